"""The hooks a vitcore plugin can implement.

Each ``register_*`` hook receives a ``register`` callback; the plugin calls it once per component
class it provides (the idiom of simonw/llm's ``register_models``)::

    @vitcore.hookimpl
    def register_models(register):
        register(MyViT)
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("vitcore")

Register = Callable[[type], None]


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset providers (subclasses of ``vitcore.components.DatasetProvider``)."""


@hookspec
def register_models(register: Register) -> None:
    """Register model builders (subclasses of ``vitcore.components.ModelBuilder``)."""


@hookspec
def register_augmentations(register: Register) -> None:
    """Register augmentations (subclasses of ``vitcore.components.Augmentation``)."""


@hookspec
def register_metric_sinks(register: Register) -> None:
    """Register metric sinks (subclasses of ``vitcore.components.MetricSink``)."""


@hookspec
def register_visualizers(register: Register) -> None:
    """Register visualizers (subclasses of ``vitcore.components.Visualizer``)."""


@hookspec
def register_exporters(register: Register) -> None:
    """Register exporters (subclasses of ``vitcore.components.Exporter``)."""


@hookspec(firstresult=True)
def vit_view(model: "object") -> "object | None":
    """Return a ``vitcore.components.ViTView`` of ``model`` if this plugin built it, else None.

    Model plugins answer for their own models, so visualizers see every ViT the same way and
    never import timm or transformers themselves.
    """


@hookspec
def run_finished(run_dir: "object", summary: "object") -> None:
    """Called on rank 0 when a run has finished training, pictures and exports (status completed
    or early_stopped), after summary.json is written: e.g. to write a report."""


@hookspec
def epoch_end(event: "object") -> None:
    """Called on rank 0 after each epoch (a ``vitcore.api.EpochEnd``), after the spec's sinks got
    theirs. May raise ``vitcore.api.StopRun`` to end the run early (plugin API 1.3)."""


@hookspec
def run_end(event: "object") -> None:
    """Called on rank 0 once a run has ended, whatever its status (a ``vitcore.api.RunEnd``),
    after summary.json is written (plugin API 1.3)."""


@hookspec
def register_commands(cli: "object") -> None:
    """Add click commands or groups to the ``vitcore`` command line (``cli`` is its click group)."""


@hookspec(firstresult=True)
def model_file_predictor(path: "object") -> "object | None":
    """Return ``predict(images: list[Path], top_k: int) -> list[dict]`` for an exported model file
    this plugin can run (e.g. ``model.onnx``), else None. Used by ``vitcore predict FILE IMAGE...``;
    each result is ``{"image": str, "top": [{"label": str, "probability": float}, ...]}``."""
