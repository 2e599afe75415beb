"""The component interfaces every plugin implements, and the contexts the engine hands them.

A component is a class with a unique ``name``, a pydantic ``Options`` model for its settings and
the methods of its kind. The engine creates one instance per spec entry: ``Component(options)``.
This module must stay cheap to import (no torch at module level): ``vitcore plugins list`` and
``vitcore --help`` import every plugin's registration code.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Iterator, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch.utils.data import Dataset


class Options(BaseModel):
    """Base for every component's options: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class PathOption:
    """Marks a string option as a file or folder path (plugin API 1.3): ``root: SpecPath``.

    When a spec is resolved, a relative value is made absolute: against the spec file's folder, or
    the working directory for a value given with ``--set`` (or a spec given as a dict without a
    folder). Components get the absolute path and the run's spec.json records it, so ``vitcore
    resume`` and ``vitcore export`` work from any folder. With ``or_name`` the value may also be a
    name that is no path (a Hugging Face hub id): it is made absolute only when that path exists.
    """

    def __init__(self, or_name: bool = False) -> None:
        self.or_name = or_name

    def __repr__(self) -> str:
        return f"PathOption(or_name={self.or_name})"


#: An option holding a path (see ``PathOption``): ``SpecPath | None``, ``list[SpecPath]`` work too.
SpecPath = Annotated[str, PathOption()]
#: A path, or a name that is not one (a hub id): made absolute only when the path exists.
SpecPathOrName = Annotated[str, PathOption(or_name=True)]


@dataclass(frozen=True)
class PreflightContext:
    """What ``Component.preflight`` gets: what is known of a run before it trains (plugin API 1.3).

    ``vitcore validate`` and ``vitcore run`` check a spec before any training step; ``classes``,
    ``preprocessing`` and ``model`` (built, untrained) are None when not built yet: check what
    can be checked without them.
    """

    #: The resolved spec, as the run's spec.json will hold it.
    spec: Mapping[str, Any]
    classes: "list[str] | None" = None
    preprocessing: "Preprocessing | None" = None
    model: "torch.nn.Module | None" = None


class Component:
    """Base class of all components. Subclasses set ``name`` and usually ``Options``."""

    #: The name a spec uses in ``{"type": NAME}``.
    name: ClassVar[str] = ""
    #: One-line description shown by ``vitcore plugins list``; defaults to the docstring's first line.
    description: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options | None = None) -> None:
        self.options = options if options is not None else self.Options()

    def preflight(self, ctx: PreflightContext) -> list[str]:
        """Problems that would make a run with these options fail later (plugin API 1.3).

        One string per problem, starting with the option's name when it is about one option
        (``"query_patch: (9, 0) lies outside the model's 4x4 patch grid"``); ``vitcore validate``
        and ``vitcore run`` refuse the spec with exit 2, naming this entry's field path, before
        training instead of after it. May be called twice (before and after the model is built).
        """
        return []

    @classmethod
    def summary(cls) -> str:
        if cls.description:
            return cls.description
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class DataContext:
    """What a dataset provider gets: where it may cache files and the run's seed."""

    cache_dir: Path
    seed: int = 0
    #: The spec file's folder: resolve relative paths of options not marked ``SpecPath`` here
    #: (``SpecPath`` options arrive absolute). The working directory for a spec given as a dict.
    spec_dir: Path = field(default_factory=Path.cwd)


@dataclass
class DataSplits:
    """A dataset provider's result.

    Each split is a map-style dataset whose items are ``(PIL.Image in RGB mode, int label)``.
    The engine adds the transforms; providers never resize or normalise.
    """

    classes: list[str]
    train: "Dataset"
    val: "Dataset"
    test: "Dataset | None" = None
    #: Extra facts about the data (e.g. the shapes data set's bounding-box file), kept in the run.
    info: dict[str, Any] = field(default_factory=dict)


class DatasetProvider(Component):
    """Supplies the train/val(/test) splits and the class names."""

    def load(self, ctx: DataContext) -> DataSplits:  # pragma: no cover - interface
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class Preprocessing:
    """How images must be prepared for a model; exported next to the weights."""

    image_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bilinear"
    #: Evaluation resizes the short side to ``image_size / crop_pct`` then centre-crops.
    crop_pct: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
        }


@dataclass
class ModelContext:
    """What a model builder gets: the class count and names of the data set."""

    num_classes: int
    class_names: list[str]
    #: The spec file's folder, as ``DataContext.spec_dir``.
    spec_dir: Path = field(default_factory=Path.cwd)
    #: False when a checkpoint will overwrite every weight (evaluate, predict, export): builders
    #: then build the architecture only and read no pretrained files, which may have moved.
    load_pretrained: bool = True


class ModelBuilder(Component):
    """Builds an ``nn.Module`` mapping ``(B, 3, H, W)`` float images to ``(B, num_classes)`` logits."""

    def build(self, ctx: ModelContext) -> "torch.nn.Module":  # pragma: no cover - interface
        raise NotImplementedError

    def preprocessing(self) -> Preprocessing:  # pragma: no cover - interface
        raise NotImplementedError

    def no_weight_decay(self, model: "torch.nn.Module") -> set[str]:
        """Names of parameters exempt from weight decay beyond norms/biases (e.g. position embeddings)."""
        return set()

    def param_groups(
        self, model: "torch.nn.Module", weight_decay: float, lr: float
    ) -> "list[dict[str, Any]] | None":
        """Optimizer parameter groups, for builders that need their own (layer-wise LR decay,
        frozen blocks). Each group holds ``params`` and may set ``lr`` and ``weight_decay``; the
        schedule scales every group's ``lr`` by the same factor. None: the engine's default
        groups (decay on weights; none on norms, biases, embeddings and tokens)."""
        return None


# --------------------------------------------------------------------------------------------
# Augmentations
# --------------------------------------------------------------------------------------------


@dataclass
class AugmentationContext:
    preprocessing: Preprocessing
    num_classes: int


class Augmentation(Component):
    """Training-time augmentation, per sample (in the data loader) or per batch (on the device).

    ``sample_transform`` returns a torchvision transforms-v2 callable applied to a ``uint8``
    ``(3, H, W)`` image tensor; the engine resizes to the model's size afterwards if needed.
    ``batch_transform`` returns ``f(images, targets) -> (images, soft_targets)`` applied to a
    normalised float batch on the device (MixUp, CutMix); targets come in as class indices.
    ``device_transform`` (optional, plugin API 1.2) returns the batched, on-device version of
    ``sample_transform``, used instead of it when the spec sets ``train.augment: device``.
    """

    def sample_transform(self, ctx: AugmentationContext) -> Callable | None:
        return None

    def batch_transform(self, ctx: AugmentationContext) -> Callable | None:
        return None

    def device_transform(self, ctx: AugmentationContext) -> "Callable[[torch.Tensor], torch.Tensor] | None":
        """``f(images) -> images``: ``sample_transform``'s work on a whole batch on the training device.

        Used with ``train.augment: device``, in the order the spec lists the augmentations, before
        normalisation: ``images`` is a ``(B, 3, H, W)`` batch on the device, every image the same
        size; the engine passes float32 holding 0-255 pixel values (the loader's uint8 as floats),
        and a transform should accept ``uint8`` too. Return a batch of the same dtype, on the same
        device, all images again one size (the engine brings that size to ``image_size`` after the
        last transform if needed). **Each image must get its own random parameters** (a
        torchvision v2 transform called on a batch draws once for all of it): draw them with
        ``torch.rand(B, ..., device=images.device)``, and never read device values back to the
        host (no ``.item()``, ``.tolist()``, ``bool()``; the training loop must not wait). Runs in
        the training process, so it need not pickle. None (the default): no device version, and a
        spec with ``train.augment: device`` listing this augmentation is refused before the run
        starts if it has a ``sample_transform``.
        """
        return None


# --------------------------------------------------------------------------------------------
# Metric sinks
# --------------------------------------------------------------------------------------------


@dataclass
class SinkContext:
    run_dir: Path
    spec: Mapping[str, Any]
    #: True when continuing an earlier run (``vitcore resume``): append, do not truncate.
    resumed: bool = False
    #: The step the run continues from; records after it were discarded.
    start_step: int = 0


class MetricSink(Component):
    """Receives metric records: ``{"event": "train"|"epoch", "epoch", "step", ...}``.

    Only rank 0 has sinks; each is built once per run. ``log`` is called from the training loop at
    each logging interval and at each epoch end, with plain Python numbers (and, for ``epoch``,
    lists such as the confusion matrix). A sink must tolerate keys it does not know. ``epoch_end``
    and ``run_end`` (plugin API 1.3) are the run's moments; ``log`` of an epoch record (or
    ``epoch_end``) may raise ``StopRun`` to end the run early (a sweep pruning a trial).
    """

    def open(self, ctx: SinkContext) -> None:
        pass

    def log(self, record: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def log_image(self, tag: str, path: Path, step: int) -> None:
        """A picture a visualizer made; sinks that can show images (TensorBoard) do."""

    def log_histogram(self, tag: str, values: Any, step: int) -> None:
        """A distribution (e.g. a layer's weights) a visualizer reports; TensorBoard shows it."""

    def log_graph(self, model: "torch.nn.Module", example: "torch.Tensor") -> None:
        """The model graph, once at the start; sinks that can show it (TensorBoard) do."""

    def epoch_end(self, event: "EpochEnd") -> None:
        """After each epoch's record was logged and its checkpoints written (plugin API 1.3)."""

    def run_end(self, event: "RunEnd") -> None:
        """Once, after the run's status is final and summary.json written (plugin API 1.3)."""

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# Visualizers
# --------------------------------------------------------------------------------------------


@dataclass
class VisualizerContext:
    run_dir: Path
    #: All records of metrics.jsonl so far, in order.
    records: Sequence[Mapping[str, Any]]
    classes: list[str]
    #: The model in eval mode, or None when rendering afterwards from metrics alone.
    model: "torch.nn.Module | None" = None
    preprocessing: Preprocessing | None = None
    #: A few validation images (uint8 tensors) with labels, for model-based pictures.
    samples: Sequence[tuple["torch.Tensor", int]] = ()
    epoch: int | None = None
    final: bool = False
    #: ``log_histogram(tag, values)`` sends a distribution to the run's sinks at the current step
    #: (TensorBoard histograms); None when rendering outside a run.
    log_histogram: Callable[[str, Any], None] | None = None

    @property
    def out_dir(self) -> Path:
        return self.run_dir / "plots"


class Visualizer(Component):
    """Draws pictures into the run directory and returns their paths.

    Built once per run. ``needs_model`` visualizers are skipped by ``vitcore plot`` (metrics
    only). ``draws_at(epoch, final)`` is the one place that decides when ``render`` is called:
    by default at the end of the run, and after every epoch too for ``every_epoch`` ones.
    """

    needs_model: ClassVar[bool] = False
    every_epoch: ClassVar[bool] = False

    def draws_at(self, epoch: int, final: bool) -> bool:
        """Whether to draw after ``epoch`` (1-based) or, with ``final``, at the run's end (plugin API 1.3)."""
        return final or self.every_epoch

    def render(self, ctx: VisualizerContext) -> list[Path]:  # pragma: no cover - interface
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# The run's moments (plugin API 1.3)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochEnd:
    """An epoch has ended: its record is logged, last.pt (and best.pt if it improved) written."""

    run_dir: Path
    #: Epochs completed (1-based) and the number the run plans.
    epoch: int
    epochs: int
    #: The epoch record as the sinks got it (``event == "epoch"``).
    record: Mapping[str, Any]
    #: Every record of the run so far, in order, kept in memory (a resumed run's earlier ones too).
    history: Sequence[Mapping[str, Any]]
    #: True when this epoch improved ``train.best_metric`` (best.pt was written).
    improved: bool


@dataclass(frozen=True)
class RunEnd:
    """The run is over: ``status`` is final and summary.json holds ``summary``."""

    run_dir: Path
    status: str
    summary: Mapping[str, Any]
    history: Sequence[Mapping[str, Any]]


class StopRun(Exception):
    """Raised by a component or plugin at an epoch end to end the run early, cleanly.

    The epoch's checkpoints and record are kept; summary.json gets ``status`` (e.g. ``pruned``)
    and ``stopped: {"epoch", "reason"}``. With ``finish`` the end-of-run pictures and exports are
    made as for a completed run; without it (the default) they are skipped. ``vitcore run`` exits 0.
    """

    def __init__(self, status: str = "stopped", reason: str = "", finish: bool = False) -> None:
        super().__init__(reason or status)
        self.status = status
        self.reason = reason
        self.finish = finish


# --------------------------------------------------------------------------------------------
# Exporters
# --------------------------------------------------------------------------------------------


@dataclass
class ExportContext:
    run_dir: Path
    #: The best model, in eval mode, on the CPU, in float32.
    model: "torch.nn.Module"
    classes: list[str]
    preprocessing: Preprocessing
    #: The resolved spec, for provenance.
    spec: Mapping[str, Any]
    #: A small batch of real validation images, normalised float, for export checks.
    example_inputs: "torch.Tensor | None" = None

    @property
    def out_dir(self) -> Path:
        return self.run_dir / "exports"


class Exporter(Component):
    """Writes the best model in some format under ``run_dir/exports`` and returns the files."""

    def export(self, ctx: ExportContext) -> list[Path]:  # pragma: no cover - interface
        raise NotImplementedError


@contextmanager
def evaluating(model: "torch.nn.Module") -> Iterator[None]:
    """Eval mode without gradients for the block, then the model's own mode again: how every
    ``ViTView.capture_attention`` must run (dropout would perturb the maps)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------------
# A uniform view of a Vision Transformer (answered by model plugins through the vit_view hook)
# --------------------------------------------------------------------------------------------


@dataclass
class ViTView:
    """What visualizers need to know about a ViT, whatever library built it.

    ``capture_attention(images)`` runs the model in eval mode with explicit (non-fused) attention
    and returns, per block, the attention weights ``(B, heads, T, T)`` over all tokens (prefix
    tokens first, then patches in row-major grid order); it restores the model's attention
    implementation and training mode afterwards.
    """

    model: "torch.nn.Module"
    image_size: tuple[int, int]
    patch_size: tuple[int, int]
    #: Class, distillation and register tokens before the patch tokens.
    num_prefix_tokens: int
    num_blocks: int
    num_heads: int
    #: "token" (class token) or "avg" (global average pooling of patch tokens).
    pooling: str
    capture_attention: Callable[["torch.Tensor"], list["torch.Tensor"]]
    #: Position embeddings ``(rows, D)`` or None when the model has none; the last
    #: ``grid[0] * grid[1]`` rows belong to the patches (some models give prefix tokens none).
    position_embedding: Callable[[], "torch.Tensor | None"]
    #: The patch projection as a conv weight ``(D, 3, p, p)``.
    patch_embedding_weight: Callable[[], "torch.Tensor"]
    #: Per block: ``(name, fc1, fc2)`` linear layers of its MLP.
    mlp_layers: Callable[[], list[tuple[str, "torch.nn.Linear", "torch.nn.Linear"]]]
    #: The classification head (a linear layer).
    head: Callable[[], "torch.nn.Linear"]

    @property
    def grid(self) -> tuple[int, int]:
        return (self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1])


#: The six component kinds: kind name -> (base class, hook name).
KINDS: dict[str, tuple[type[Component], str]] = {
    "datasets": (DatasetProvider, "register_datasets"),
    "models": (ModelBuilder, "register_models"),
    "augmentations": (Augmentation, "register_augmentations"),
    "sinks": (MetricSink, "register_metric_sinks"),
    "visualizers": (Visualizer, "register_visualizers"),
    "exporters": (Exporter, "register_exporters"),
}
