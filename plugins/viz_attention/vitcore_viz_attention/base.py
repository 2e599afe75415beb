"""What every visualizer of this plugin shares: when it runs, where it writes, the ViT view, inputs.

Cheap to import (no torch): the register hook imports the visualizer classes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from vitcore.api import Options, Visualizer, VisualizerContext, ViTView

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


@dataclass
class VizContext(VisualizerContext):
    """A visualizer context whose pictures go to ``viz_dir`` (``vitcore visualize --out``)."""

    viz_dir: Path | None = None


def viz_dir(ctx: VisualizerContext) -> Path:
    """``run_dir/viz`` unless the context names another folder."""
    chosen = ctx.viz_dir if isinstance(ctx, VizContext) else None
    return chosen if chosen is not None else ctx.run_dir / "viz"


class ScheduleOptions(Options):
    every_n_epochs: int = Field(
        0, ge=0, description="Also draw after every N-th epoch (TensorBoard shows the pictures per step); "
                             "0: only at the end of the run.")


class SampleOptions(ScheduleOptions):
    num_samples: int = Field(4, ge=1, description="Validation images drawn (the engine keeps 8).")


@dataclass
class Inputs:
    """The validation images a visualizer looks at, ready for the model."""

    images: "torch.Tensor"  # (B, 3, H, W) uint8, on the CPU, for drawing
    batch: "torch.Tensor"  # normalised float on the model's device, for the model
    labels: list[int]


class ViTVisualizer(Visualizer):
    """A visualizer that looks inside the model through its ``ViTView``.

    ``draws_at`` (plugin API 1.3) tells the engine when to draw: every ``every_n_epochs`` epochs
    and always at the end. Pictures keep their file names from epoch to epoch, so TensorBoard
    shows one image tag with a slider over the steps.
    """

    needs_model: ClassVar[bool] = True
    every_epoch: ClassVar[bool] = True
    Options = ScheduleOptions

    def render(self, ctx: VisualizerContext) -> list[Path]:
        # The engine only calls when draws_at said so; a direct call (tests, scripts) is held to it too.
        if ctx.model is None or not self.draws_at(ctx.epoch or 0, ctx.final):
            return []
        from vitcore.api import vit_view

        view = vit_view(ctx.model)
        if view is None:
            warnings.warn(f"{self.name}: no installed plugin describes a {type(ctx.model).__name__} as a "
                          "ViT (vit_view hook), so there is nothing to look inside; skipped", stacklevel=2)
            return []
        return self.draw(ctx, view, viz_dir(ctx))

    def draws_at(self, epoch: int, final: bool) -> bool:
        every = self.options.every_n_epochs
        return final or (every > 0 and epoch > 0 and epoch % every == 0)

    def draw(self, ctx: VisualizerContext, view: ViTView, folder: Path) -> list[Path]:  # pragma: no cover
        raise NotImplementedError

    def inputs(self, ctx: VisualizerContext, view: ViTView) -> Inputs | None:
        """The first ``num_samples`` samples, normalised for the model; None (with a warning) if
        the context has no samples or no preprocessing to prepare them with."""
        if not ctx.samples or ctx.preprocessing is None:
            warnings.warn(f"{self.name}: no sample images (or no preprocessing) to show the model; skipped",
                          stacklevel=3)
            return None
        import torch

        from vitcore.api import normalize

        chosen = list(ctx.samples)[: self.options.num_samples]
        images = torch.stack([image for image, _ in chosen]).cpu()
        parameter = next(view.model.parameters())
        batch = normalize(images, ctx.preprocessing, parameter.device).to(parameter.dtype)
        return Inputs(images, batch, [int(label) for _, label in chosen])


def capture(view: ViTView, batch: "torch.Tensor") -> list["torch.Tensor"]:
    """Per block, ``(B, heads, T, T)`` float32 attention on the CPU, with the model in eval mode."""
    return [a.float().cpu() for a in view.capture_attention(batch)]


def predict(view: ViTView, batch: "torch.Tensor") -> list[int]:
    """Predicted class per item, in eval mode, restoring the model's mode afterwards."""
    import torch

    model: Any = view.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(batch).argmax(dim=1).tolist()
    finally:
        model.train(was_training)
