"""The public API of vitcore for plugins: the one module a plugin imports vitcore names from.

Besides this module a plugin may use ``vitcore`` itself (``vitcore.hookimpl``,
``vitcore.PLUGIN_API_VERSION``, ``vitcore.__version__``) and, in its tests, ``vitcore.testing``.
Everything else under ``vitcore.`` is the core's own and may change in any release.

Everything here is versioned with ``vitcore.PLUGIN_API_VERSION``: a minor step (1.2 to 1.3) only
adds names, optional methods or fields; a major step (1.x to 2.0) may remove or change them. A
plugin states the versions it works with in ``VITCORE_PLUGIN_API = ">=1.3,<2"`` (docs/PLUGINS.md).

Cheap to import: the component interfaces, contexts and errors are defined without torch; the
helpers that need torch or matplotlib are imported on first use (module ``__getattr__``), so a
plugin's registration module can ``from vitcore.api import ...`` at the top and ``vitcore --help``
stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vitcore import PLUGIN_API_VERSION, hookimpl
from vitcore.components import (
    Augmentation,
    AugmentationContext,
    Component,
    DataContext,
    DatasetProvider,
    DataSplits,
    EpochEnd,
    ExportContext,
    Exporter,
    MetricSink,
    ModelBuilder,
    ModelContext,
    Options,
    Preprocessing,
    RunEnd,
    SinkContext,
    StopRun,
    Visualizer,
    VisualizerContext,
    ViTView,
    evaluating,
)
from vitcore.errors import SpecError, VitcoreError
from vitcore.hookspecs import Register

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from vitcore.registry import Registry

#: Names imported from their module on first use: ``name -> (module, attribute)``. One line each;
#: add a helper here (and to docs/PLUGINS.md, "Public API") when a plugin needs it.
_LAZY: dict[str, tuple[str, str]] = {
    # Paths of vitcore's own folders.
    "cache_dir": ("vitcore.paths", "cache_dir"),
    "config_dir": ("vitcore.paths", "config_dir"),
    # Files: atomic writes, locks, hashes, images.
    "atomic_path": ("vitcore.atomic", "atomic_path"),
    "write_atomically": ("vitcore.atomic", "write_atomically"),
    "write_text_atomic": ("vitcore.atomic", "write_text_atomic"),
    "write_json_atomic": ("vitcore.runs", "write_json_atomic"),
    "read_json": ("vitcore.runs", "read_json"),
    "locked": ("vitcore.atomic", "locked"),
    "sha256": ("vitcore.hashing", "sha256"),
    "load_rgb": ("vitcore.images", "load_rgb"),
    "is_image_file": ("vitcore.images", "is_image_file"),
    # Pictures.
    "save_figure": ("vitcore.figures", "save_figure"),
    "pyplot": ("vitcore.figures", "pyplot"),
    # Images as the engine prepares them.
    "eval_transform": ("vitcore.engine.transforms", "eval_transform"),
    "train_transform": ("vitcore.engine.transforms", "train_transform"),
    # Specs and components.
    "SpecPath": ("vitcore.components", "SpecPath"),
    "SpecPathOrName": ("vitcore.components", "SpecPathOrName"),
    "PreflightContext": ("vitcore.components", "PreflightContext"),
    "load_spec": ("vitcore.spec", "load"),
    "load_dict": ("vitcore.spec", "load_dict"),
    "read_spec_file": ("vitcore.spec", "read_spec_file"),
    "preflight": ("vitcore.preflight", "preflight"),
    "apply_overrides": ("vitcore.spec", "apply_overrides"),
    "resolve_component": ("vitcore.spec", "resolve_component"),
    "ResolvedSpec": ("vitcore.spec", "ResolvedSpec"),
    "ResolvedComponent": ("vitcore.spec", "ResolvedComponent"),
    "load_splits": ("vitcore.data_loading", "load_splits"),
    "api_satisfies": ("vitcore.plugins", "api_satisfies"),
    # Runs: their folders, records, best model, exports and versions.
    "now_iso": ("vitcore.runs", "now_iso"),
    "resolve_run_dir": ("vitcore.runs", "resolve_run_dir"),
    "run_status": ("vitcore.runs", "run_status"),
    "RunLock": ("vitcore.run_lock", "RunLock"),
    "read_records": ("vitcore.metrics_file", "read_records"),
    "read_evaluations": ("vitcore.evaluation", "read_evaluations"),
    "LoadedRun": ("vitcore.inference", "LoadedRun"),
    "load_run_model": ("vitcore.inference", "load_run_model"),
    "predict": ("vitcore.inference", "predict"),
    "example_inputs": ("vitcore.exporting", "example_inputs"),
    "validation_samples": ("vitcore.exporting", "validation_samples"),
    "write_model_card": ("vitcore.versions", "write_model_card"),
    "read_tags": ("vitcore.versions", "read_tags"),
    "tag_run": ("vitcore.versions", "tag_run"),
    "create_version_dir": ("vitcore.runs", "create_version_dir"),
    "export_run": ("vitcore.exporting", "export_run"),
    # Training: the engine as `vitcore run` / `resume` call it.
    "train": ("vitcore.engine.trainer", "train"),
    # Saying what long work is doing: a line per step with its time, bars for counted work.
    "timed_step": ("vitcore.steps", "timed_step"),
    "progress_bar": ("vitcore.steps", "progress_bar"),
    # Models: summaries and fitting saved weights.
    "summarize": ("vitcore.model_summary", "summarize"),
    "format_geometry": ("vitcore.model_summary", "format_geometry"),
    "format_table": ("vitcore.model_summary", "format_table"),
    "load_state_dict_file": ("vitcore.weights", "load_state_dict_file"),
    "adapt_state_dict": ("vitcore.weights", "adapt_state_dict"),
    "head_keys": ("vitcore.weights", "head_keys"),
    "resize_pos_embed": ("vitcore.weights", "resize_pos_embed"),
    # Pretrained files from the Hugging Face hub: the cache first, else a checked download.
    "HubRepo": ("vitcore.hub", "HubRepo"),
    "hub_cache_dir": ("vitcore.hub", "hub_cache_dir"),
}


def normalize(images: "torch.Tensor", pre: Preprocessing, device: "torch.device | str | None" = None) -> "torch.Tensor":
    """uint8 ``(B, 3, H, W)`` images -> the normalised float batch a model takes, on ``device``
    (default: the images' own), exactly as the engine normalises on the training device."""
    import torch

    from vitcore.engine.data import DeviceNormalize

    return DeviceNormalize(pre, torch.device(device) if device is not None else images.device)(images)


def vit_view(model: Any) -> ViTView | None:
    """The uniform view of ``model`` its model plugin gives (the ``vit_view`` hook), or None when
    no plugin knows it. How visualizers look inside any ViT without importing its library."""
    from vitcore.plugins import get_host

    return get_host().vit_view(model)


def registry(kind: str) -> "Registry":
    """The components of ``kind`` (``datasets``, ``models``, ``augmentations``, ``sinks``,
    ``visualizers``, ``exporters``) every loaded plugin registered: ``registry(kind).get(name)``."""
    from vitcore.plugins import registry as host_registry

    return host_registry(kind)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'vitcore.api' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "PLUGIN_API_VERSION",
    "Augmentation",
    "AugmentationContext",
    "Component",
    "DataContext",
    "DataSplits",
    "DatasetProvider",
    "EpochEnd",
    "ExportContext",
    "Exporter",
    "MetricSink",
    "ModelBuilder",
    "ModelContext",
    "Options",
    "Preprocessing",
    "Register",
    "RunEnd",
    "SinkContext",
    "SpecError",
    "StopRun",
    "ViTView",
    "Visualizer",
    "VisualizerContext",
    "VitcoreError",
    "evaluating",
    "hookimpl",
    "normalize",
    "registry",
    "vit_view",
    *_LAZY,
]
