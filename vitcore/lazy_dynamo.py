"""Import torchvision without importing ``torch._dynamo``: 1.5-3 s off every command that runs a model.

torchvision 0.29 imports torch's compiler at import time in two places, only to keep a function
for later: ``torchvision.ops.roi_align`` takes ``torch._dynamo.utils.is_compile_supported``, and
``torchvision.tv_tensors`` decorates ``wrap`` with ``torch.compiler.disable``. Loading dynamo
(sympy, torch.fx's symbolic shapes, FSDP...) costs more than torch itself, and ``vitcore predict``
on one image never compiles anything.

``install()`` (the CLI calls it; it imports nothing) puts a finder on ``sys.meta_path`` that lets
those two modules import against a stand-in ``torch._dynamo`` holding just those two names, then
removes the stand-in. When the real ``torch._dynamo`` is imported later (``train.compile``, any
``torch.compile``), the two torchvision names are replaced by what torchvision would have had, so
compiled code sees torchvision exactly as a normal import leaves it. If dynamo is already loaded,
nothing is stood in.
"""

from __future__ import annotations

import importlib.abc
import sys
import types
from typing import Any, Callable

#: The torchvision modules that touch ``torch._dynamo`` while they are imported.
_NEEDS_STAND_IN = ("torchvision.ops.roi_align", "torchvision.tv_tensors")
#: What ``disable`` was asked to wrap while the stand-in was in place: (module, attribute, arguments).
_DISABLED: list[tuple[str, str, dict[str, Any]]] = []
#: Module attributes that hold the stand-in's ``is_compile_supported`` until dynamo is loaded.
_REAL_NAMES = (("torchvision.ops.roi_align", "is_compile_supported"),)
#: Whether a module was imported against the stand-in (so the real dynamo's import must restore it).
_state = {"stood_in": False}


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (a no-op when torchvision is already imported)."""
    if "torchvision" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loading of the modules named above and, later, of the real ``torch._dynamo``."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _NEEDS_STAND_IN and name != "torch._dynamo":
            return None
        if name == "torch._dynamo" and not _state["stood_in"]:
            return None
        spec = _spec_from_others(self, name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module
        if name == "torch._dynamo":
            spec.loader.exec_module = lambda module: (run(module), _restore(module))[0]  # type: ignore[method-assign]
        else:
            spec.loader.exec_module = lambda module: _with_stand_in(run, module)  # type: ignore[method-assign]
        return spec


def _spec_from_others(finder: _Finder, name: str, path: Any, target: Any) -> Any:
    """The spec the other finders give (this one skipped)."""
    for other in sys.meta_path:
        if other is finder or not hasattr(other, "find_spec"):
            continue
        spec = other.find_spec(name, path, target)
        if spec is not None:
            return spec
    return None


def _with_stand_in(run: Callable[[types.ModuleType], None], module: types.ModuleType) -> None:
    if "torch._dynamo" in sys.modules:  # already real: nothing to save
        run(module)
        return
    import torch

    package = types.ModuleType("torch._dynamo")
    package.__path__ = []  # a package, so ``torch._dynamo.utils`` resolves to the stand-in below
    utils = types.ModuleType("torch._dynamo.utils")
    utils.is_compile_supported = _is_compile_supported  # type: ignore[attr-defined]
    package.utils = utils  # type: ignore[attr-defined]
    package.disable = _record_disable(module.__name__)  # type: ignore[attr-defined]
    sys.modules["torch._dynamo"], sys.modules["torch._dynamo.utils"] = package, utils
    _state["stood_in"] = True
    try:
        run(module)
    finally:
        for name in ("torch._dynamo.utils", "torch._dynamo"):
            if sys.modules.get(name) in (package, utils):
                del sys.modules[name]
        if torch.__dict__.get("_dynamo") is package:
            del torch._dynamo  # torch's module __getattr__ imports the real one on first use


def _is_compile_supported(device_type: Any) -> bool:
    """roi_align's check, answered by the real function (only reached while dynamo compiles)."""
    from torch._dynamo.utils import is_compile_supported

    return is_compile_supported(device_type)


def _record_disable(module_name: str) -> Callable[..., Any]:
    def disable(fn: Callable[..., Any] | None = None, recursive: bool = True, *,
                reason: str | None = None) -> Any:
        if fn is None:  # used as ``@disable(recursive=...)``
            return lambda f: disable(f, recursive, reason=reason)
        _DISABLED.append((module_name, fn.__name__, {"recursive": recursive, "reason": reason}))
        return fn  # a plain function until dynamo exists; nothing can compile before then
    return disable


def _restore(dynamo: types.ModuleType) -> None:
    """The real dynamo is loaded: give torchvision the names a normal import would have given it."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]  # nothing left to stand in for
    for module_name, attribute, kwargs in _DISABLED:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            setattr(module, attribute, dynamo.disable(getattr(module, attribute), **kwargs))
    _DISABLED.clear()
    from torch._dynamo.utils import is_compile_supported

    for module_name, attribute in _REAL_NAMES:
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, attribute, None) is _is_compile_supported:
            setattr(module, attribute, is_compile_supported)
