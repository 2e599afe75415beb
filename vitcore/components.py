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
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from torch.utils.data import Dataset


class Options(BaseModel):
    """Base for every component's options: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Component:
    """Base class of all components. Subclasses set ``name`` and usually ``Options``."""

    #: The name a spec uses in ``{"type": NAME}``.
    name: ClassVar[str] = ""
    #: One-line description shown by ``vitcore plugins list``; defaults to the docstring's first line.
    description: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options | None = None) -> None:
        self.options = options if options is not None else self.Options()

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
    spec_dir: Path = field(default_factory=Path.cwd)  # relative paths in the spec resolve here


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

    Only rank 0 has sinks. ``log`` is called from the training loop at each logging interval and
    at each epoch end, with plain Python numbers (and, for ``epoch``, lists such as the confusion
    matrix). A sink must tolerate keys it does not know.
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

    ``needs_model`` visualizers are skipped by ``vitcore plot`` (metrics only).
    ``every_epoch`` ones run at each epoch end as well as at the end of the run.
    """

    needs_model: ClassVar[bool] = False
    every_epoch: ClassVar[bool] = False

    def render(self, ctx: VisualizerContext) -> list[Path]:  # pragma: no cover - interface
        raise NotImplementedError


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
