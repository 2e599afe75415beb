"""Registries of components: one per kind, name -> component class and the plugin it came from."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from vitcore.components import Component
from vitcore.errors import DuplicateComponentError, UnknownComponentError


@dataclass(frozen=True)
class Entry:
    component: type[Component]
    plugin: str


class Registry:
    """Components of one kind. Names are unique across plugins."""

    def __init__(self, kind: str, base: type[Component]) -> None:
        self.kind = kind
        self.base = base
        self._entries: dict[str, Entry] = {}
        # Names two plugins both claim: using one is an error that names both plugins.
        self._conflicts: dict[str, str] = {}
        #: Plugins that may have supplied components of this kind but failed (plugin -> why): an
        #: unknown name then says so, since the component may be theirs.
        self.failed: dict[str, str] = {}

    def add(self, component: type[Component], plugin: str) -> None:
        if not (isinstance(component, type) and issubclass(component, self.base)):
            raise TypeError(
                f"plugin {plugin!r} registered {component!r} as one of the {self.kind}, "
                f"but it is not a subclass of {self.base.__module__}.{self.base.__name__}"
            )
        name = component.name
        if not name:
            raise TypeError(f"plugin {plugin!r}: {component.__name__} has no 'name' class attribute")
        if name in self._entries:
            other = self._entries[name].plugin
            raise DuplicateComponentError(
                f"{self.kind[:-1]} {name!r} is registered twice: by plugin {other!r} and by plugin "
                f"{plugin!r}. Uninstall one of them, or limit what loads with VITCORE_LOAD_PLUGINS."
            )
        self._entries[name] = Entry(component, plugin)

    def mark_conflict(self, name: str, message: str) -> None:
        self._conflicts[name] = message

    def get(self, name: str) -> Entry:
        if name in self._conflicts:
            raise DuplicateComponentError(self._conflicts[name])
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        available = sorted(self._entries)
        close = difflib.get_close_matches(name, available, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(available) if available else "(none: is a plugin missing?)"
        message = f"unknown {self.kind[:-1]} {name!r}.{hint} Available: {listed}"
        for plugin, reason in sorted(self.failed.items()):
            message += (f". Note: plugin {plugin} failed to load: {reason}; if {name!r} is one of its "
                        "components, fix that first (`vitcore plugins list` shows each plugin's state)")
        return message

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, Entry]]:
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
