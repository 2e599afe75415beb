"""Plugin loading: built-ins and entry points (group ``vitcore``), each isolated from the others.

Nothing happens at import time. ``get_host()`` loads plugins once, lazily, and builds the six
registries. A plugin that fails to import, implements a misspelt hook, or raises in a hook is
recorded with its error and left out; every other plugin still works. So is a plugin whose
``VITCORE_PLUGIN_API`` requirement this core's ``PLUGIN_API_VERSION`` does not meet: it is refused
at load time rather than failing later, in the middle of a run.
"""

from __future__ import annotations

import importlib
import operator
import os
import re
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from vitcore import PLUGIN_API_VERSION, __version__, hookspecs
from vitcore.components import KINDS, Component
from vitcore.errors import DuplicateComponentError
from vitcore.registry import Registry

ENTRY_POINT_GROUP = "vitcore"
LOAD_ENV = "VITCORE_LOAD_PLUGINS"
#: Module attribute where a plugin states the plugin API versions it works with.
API_ATTRIBUTE = "VITCORE_PLUGIN_API"

#: Built-in components are plugins too, registered through the same hooks (datasette's idiom).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "vitcore.builtin.datasets",
    "vitcore.builtin.shapes",
    "vitcore.builtin.transforms",
    "vitcore.builtin.models",
    "vitcore.builtin.torchvision_view",
    "vitcore.builtin.sinks",
    "vitcore.builtin.plots",
    "vitcore.builtin.exporters",
    "vitcore.builtin.program_export",
)


@dataclass
class PluginInfo:
    """What ``vitcore plugins list`` shows about one plugin."""

    name: str
    version: str | None
    builtin: bool
    module: str
    #: Problems found while importing the plugin (fixed for the process's life).
    load_errors: list[str] = field(default_factory=list)
    #: Problems found while calling its hooks (recomputed whenever the registries are rebuilt).
    hook_errors: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)
    #: The plugin's ``VITCORE_PLUGIN_API`` requirement; None when it declares none.
    api: str | None = None

    @property
    def errors(self) -> list[str]:
        return self.load_errors + self.hook_errors

    @property
    def status(self) -> str:
        return "error" if self.errors else "ok"

    @property
    def loaded(self) -> bool:
        return not self.load_errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "builtin": self.builtin,
            "module": self.module,
            "status": self.status,
            "errors": self.errors,
            "hooks": self.hooks,
            "components": self.components,
            "api": {"provided": PLUGIN_API_VERSION, "required": self.api},
        }


def normalize_name(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def selected_distributions() -> set[str] | None:
    """Names from ``VITCORE_LOAD_PLUGINS``; None means load every installed plugin."""
    raw = os.environ.get(LOAD_ENV)
    if raw is None:
        return None
    return {normalize_name(part) for part in raw.split(",") if part.strip()}


_CLAUSE = re.compile(r"(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)")
_COMPARE = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
            ">": operator.gt, "<": operator.lt}


def _version(text: str, length: int) -> tuple[int, ...]:
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (length - len(parts))


def api_satisfies(requirement: str, provided: str = PLUGIN_API_VERSION) -> bool:
    """Whether ``provided`` meets every comma-separated clause of ``requirement`` (``">=1.0,<2"``).

    Clauses are an operator (>=, >, <=, <, ==, !=) and a dotted version; missing parts are 0, so
    ``<2`` means below 2.0. Anything else raises ValueError: no packaging dependency needed.
    """
    clauses = [c.strip() for c in requirement.split(",")]
    parsed = [_CLAUSE.fullmatch(c) for c in clauses]
    if not all(parsed):
        raise ValueError(f"not a version requirement: {requirement!r}")
    for match in parsed:
        op, version = match.groups()  # type: ignore[union-attr]
        length = max(len(version.split(".")), len(provided.split(".")))
        if not _COMPARE[op](_version(provided, length), _version(version, length)):
            return False
    return True


def api_problem(requirement: object) -> str | None:
    """Why a plugin declaring ``requirement`` must not load here, or None when it may."""
    if requirement is None:
        return None
    try:
        if not isinstance(requirement, str):
            raise ValueError(requirement)
        satisfied = api_satisfies(requirement)
    except ValueError:
        major = int(PLUGIN_API_VERSION.split(".")[0])
        return (f"{API_ATTRIBUTE} = {requirement!r} is not a version requirement; write "
                f"comma-separated clauses such as '>={major}.0,<{major + 1}'")
    if satisfied:
        return None
    return (f"needs vitcore plugin API {requirement} ({API_ATTRIBUTE}) but vitcore {__version__} "
            f"provides plugin API {PLUGIN_API_VERSION}; not loaded. Install a release of the plugin "
            f"made for plugin API {PLUGIN_API_VERSION}, or a vitcore whose plugin API is {requirement}")


def _short_error(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({frame.filename}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


class PluginHost:
    """The plugin manager, what each plugin contributed, and the component registries."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("vitcore")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.registries: dict[str, Registry] = {
            kind: Registry(kind, base) for kind, (base, _hook) in KINDS.items()
        }

    # -- loading ---------------------------------------------------------------------------

    def load_builtins_only(self) -> None:
        self._load_builtins()
        self._build_registries()

    def _load_builtins(self) -> None:
        for module_name in BUILTIN_PLUGINS:
            info = PluginInfo(name=module_name, version=None, builtin=True, module=module_name)
            self._register(info, lambda m=module_name: importlib.import_module(m))

    def load(self) -> None:
        self._load_builtins()
        wanted = selected_distributions()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else ep.name
            if wanted is not None and normalize_name(dist) not in wanted:
                continue
            name = dist if dist not in self.infos else f"{dist}:{ep.name}"
            version = ep.dist.version if ep.dist is not None else None
            info = PluginInfo(name=name, version=version, builtin=False, module=ep.value)
            self._register(info, ep.load)
        self._build_registries()

    def register_plugin(self, plugin: object, name: str, version: str | None = None) -> PluginInfo:
        """Register a plugin object at run time (tests, notebooks) and rebuild the registries."""
        info = PluginInfo(name=name, version=version, builtin=False, module=repr(plugin))
        self._register(info, lambda: plugin)
        self._build_registries()
        return info

    def _register(self, info: PluginInfo, loader) -> None:
        self.infos[info.name] = info
        try:
            plugin = loader()
            declared = getattr(plugin, API_ATTRIBUTE, None)
            info.api = declared if declared is None or isinstance(declared, str) else repr(declared)
            problem = api_problem(declared)
            if problem is not None:
                info.load_errors.append(problem)
                return
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is isolated
            info.load_errors.append(f"failed to load: {_short_error(exc)}")
            return
        known = set(self.pm.hook.__dict__)
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.spec is None:
                info.load_errors.append(
                    f"implements unknown hook {caller.name!r} (misspelt?). "
                    f"Known hooks: {', '.join(sorted(h for h in known if not h.startswith('_')))}"
                )
            else:
                info.hooks.append(caller.name)
        if not info.loaded:
            self.pm.unregister(plugin)

    def _build_registries(self) -> None:
        for info in self.infos.values():
            info.hook_errors.clear()
            info.components.clear()
        for kind, (base, hook_name) in KINDS.items():
            registry = Registry(kind, base)
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self.infos.get(impl.plugin_name)
                if info is None or not info.loaded:
                    continue
                added: list[type[Component]] = []
                try:
                    impl.function(register=added.append)
                except Exception as exc:  # noqa: BLE001
                    info.hook_errors.append(f"{hook_name} raised {_short_error(exc)}")
                    continue
                names = []
                for component in added:
                    try:
                        registry.add(component, info.name)
                    except DuplicateComponentError as exc:
                        info.hook_errors.append(str(exc))
                        registry.mark_conflict(component.name, str(exc))
                    except TypeError as exc:
                        info.hook_errors.append(str(exc))
                    else:
                        names.append(component.name)
                if names:
                    info.components[kind] = sorted(names)
            self.registries[kind] = registry

    # -- queries ---------------------------------------------------------------------------

    def registry(self, kind: str) -> Registry:
        return self.registries[kind]

    def plugins(self, include_builtin: bool = False) -> list[PluginInfo]:
        return [i for i in self.infos.values() if include_builtin or not i.builtin]


    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a hook on every loaded plugin, isolating failures like the register hooks."""
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            info = self.infos.get(impl.plugin_name)
            if info is None or not info.loaded:
                continue
            try:
                results.append(impl.function(**{k: kwargs[k] for k in impl.argnames}))
            except Exception as exc:  # noqa: BLE001
                message = f"{hook_name} raised {_short_error(exc)}"
                info.hook_errors.append(message)
                warnings.warn(f"plugin {info.name}: {message}", stacklevel=2)
        return results

    def vit_view(self, model: Any):
        """The first ``ViTView`` a model plugin gives for ``model`` (None if none knows it)."""
        return self.pm.hook.vit_view(model=model)


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        host = PluginHost()
        host.load()
        _HOST = host
    return _HOST


def reset() -> None:
    """Forget loaded plugins so the next ``get_host()`` loads afresh (tests, env changes)."""
    global _HOST
    _HOST = None


def registry(kind: str) -> Registry:
    return get_host().registry(kind)
