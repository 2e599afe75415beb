"""Plugin loading: built-ins and entry points (group ``vitcore``), each isolated from the others.

Nothing happens at import time. ``get_host()`` loads plugins once, lazily, and builds the six
registries. A plugin that fails to import, implements a misspelt hook, or raises in a hook is
recorded with its error and left out; every other plugin still works. So is a plugin whose
``VITCORE_PLUGIN_API`` requirement this core's ``PLUGIN_API_VERSION`` does not meet: it is refused
at load time rather than failing later, in the middle of a run.
"""

from __future__ import annotations

import functools
import importlib
import os
import traceback
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, Specifier
from packaging.version import Version

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


#: The operators a ``VITCORE_PLUGIN_API`` clause may use (a subset of PEP 440's).
_OPERATORS = frozenset({">=", "<=", "==", "!=", ">", "<"})


def api_satisfies(requirement: str, provided: str = PLUGIN_API_VERSION) -> bool:
    """Whether ``provided`` meets every comma-separated clause of ``requirement`` (``">=1.0,<2"``).

    Clauses are an operator (>=, >, <=, <, ==, !=) and a version, compared by ``packaging``
    (PEP 440): missing parts are 0, so ``<2`` means below 2.0. An empty clause, another operator
    (``~=``, ``===``) or a wildcard raises ValueError.
    """
    clauses = [c.strip() for c in requirement.split(",")]
    try:
        specifiers = [Specifier(c) for c in clauses]
    except InvalidSpecifier:
        raise ValueError(f"not a version requirement: {requirement!r}") from None
    if any(s.operator not in _OPERATORS or s.version.endswith("*") for s in specifiers):
        raise ValueError(f"not a version requirement: {requirement!r}")
    version = Version(provided)
    return all(s.contains(version, prereleases=True) for s in specifiers)


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


def _load_failure(error: str) -> str:
    """A load error without its own ``failed to load:`` (messages add it in front)."""
    prefix = "failed to load: "
    return error[len(prefix):] if error.startswith(prefix) else error


#: Hooks the registries call one plugin at a time (``_build_registries``), recording errors there.
_REGISTER_HOOKS = frozenset(hook for _base, hook in KINDS.values())

#: Exception types the current ``PluginHost.call`` lets through isolated hook functions.
_PROPAGATE: ContextVar[tuple[type[BaseException], ...]] = ContextVar("vitcore_propagate", default=())


def _isolated(function: Any, hook_name: str, info: PluginInfo) -> Any:
    """``function`` (one plugin's hook implementation), with its exceptions recorded on ``info``
    and a warning instead of raised, so the hook call goes on with the other plugins (a
    ``firstresult`` hook such as ``vit_view`` asks the next one)."""

    @functools.wraps(function)
    def isolated(*args: Any) -> Any:
        try:
            return function(*args)
        except _PROPAGATE.get():
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is isolated
            message = f"{hook_name} raised {_short_error(exc)}"
            info.hook_errors.append(message)
            warnings.warn(f"plugin {info.name}: {message}", stacklevel=2)
            return None

    return isolated


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
            return
        # pluggy calls ``impl.function``: wrap each of this plugin's plain implementations, so
        # ``pm.hook.NAME(...)`` keeps pluggy's ordering (tryfirst/trylast), firstresult and
        # wrappers while one plugin's failure stays that plugin's. Wrappers (``hookwrapper``,
        # ``wrapper``) run around the others and are left as they are.
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.name in _REGISTER_HOOKS:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                    impl.function = _isolated(impl.function, caller.name, info)

    def _build_registries(self) -> None:
        for info in self.infos.values():
            info.hook_errors.clear()
            info.components.clear()
        # A plugin that did not load may have provided any kind of component.
        not_loaded = {info.name: _load_failure(info.load_errors[0]) for info in self.infos.values() if not info.loaded}
        for kind, (base, hook_name) in KINDS.items():
            registry = Registry(kind, base)
            registry.failed = dict(not_loaded)
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self.infos.get(impl.plugin_name)
                if info is None or not info.loaded:
                    continue
                added: list[type[Component]] = []
                try:
                    impl.function(register=added.append)
                except Exception as exc:  # noqa: BLE001
                    info.hook_errors.append(f"{hook_name} raised {_short_error(exc)}")
                    registry.failed[info.name] = info.hook_errors[-1]
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


    def call(self, hook_name: str, propagate: tuple[type[BaseException], ...] = (), **kwargs: Any) -> list[Any]:
        """Call a hook through pluggy (``pm.hook.NAME``): its order, ``tryfirst``/``trylast`` and
        wrappers apply; a plugin whose implementation raises is recorded (``vitcore plugins
        list``), warned about, and the others still run. Returns the non-None results.

        Exceptions of the ``propagate`` types are not failures but messages (``StopRun`` from
        ``epoch_end``): they pass through to the caller."""
        caller = getattr(self.pm.hook, hook_name)
        token = _PROPAGATE.set(tuple(propagate))
        try:
            result = caller(**kwargs)
        finally:
            _PROPAGATE.reset(token)
        if caller.spec is not None and caller.spec.opts.get("firstresult"):
            return [] if result is None else [result]
        return result

    def vit_view(self, model: Any) -> Any:
        """The first ``ViTView`` a model plugin gives for ``model`` (None if none knows it); a
        plugin whose ``vit_view`` raises is recorded and the next one is asked."""
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
