"""Built-in visualizers drawn from metrics.jsonl alone: training curves and the confusion matrix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import Field

from vitcore import hookimpl
from vitcore.components import Options, Visualizer, VisualizerContext


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path) -> Path:
    """Write a PNG atomically, so a viewer or a kill never sees half a picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        _pyplot().close(figure)
    return path


def _series(records: Sequence[dict], event: str, key: str, x: str = "step") -> tuple[list, list]:
    rows = [r for r in records if r.get("event") == event and isinstance(r.get(key), (int, float))]
    return [r[x] for r in rows], [r[key] for r in rows]


class CurvesOptions(Options):
    log_scale_loss: bool = Field(False, description="Draw the loss on a logarithmic axis.")


class Curves(Visualizer):
    """Loss, accuracy and learning-rate curves (curves.png)."""

    name = "curves"
    Options = CurvesOptions

    def render(self, ctx: VisualizerContext) -> list[Path]:
        records = list(ctx.records)
        if not records:
            return []
        plt = _pyplot()
        figure, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(15, 4))
        steps, losses = _series(records, "train", "loss")
        loss_ax.plot(steps, losses, alpha=0.5, label="train (per log interval)")
        for key, label in (("train_loss", "train (epoch)"), ("val_loss", "validation")):
            x, y = _series(records, "epoch", key)
            loss_ax.plot(x, y, marker="o", label=label)
        loss_ax.set(title="Loss", xlabel="optimizer step", ylabel="cross-entropy")
        if self.options.log_scale_loss:
            loss_ax.set_yscale("log")
        for key, label in (("train_acc", "train"), ("val_acc1", "validation top-1"), ("val_acc5", "validation top-5")):
            x, y = _series(records, "epoch", key, x="epoch")
            if y:
                acc_ax.plot(x, y, marker="o", label=label)
        acc_ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        x, y = _series(records, "train", "lr")
        lr_ax.plot(x, y)
        lr_ax.set(title="Learning rate", xlabel="optimizer step")
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        lr_ax.grid(alpha=0.3)
        return [save_figure(figure, ctx.out_dir / "curves.png")]


class ConfusionOptions(Options):
    which: Literal["best", "last"] = Field("best", description="Epoch whose confusion matrix is drawn.")
    normalize: bool = Field(True, description="Show each row (true class) as fractions.")


class ConfusionMatrix(Visualizer):
    """Validation confusion matrix of the best (or last) epoch (confusion_matrix.png)."""

    name = "confusion_matrix"
    Options = ConfusionOptions

    def render(self, ctx: VisualizerContext) -> list[Path]:
        epochs = [r for r in ctx.records if r.get("event") == "epoch" and r.get("confusion")]
        if not epochs:
            return []
        chosen = epochs[-1]
        if self.options.which == "best":
            best = [r for r in epochs if r.get("best")]
            chosen = best[-1] if best else chosen
        import numpy as np

        matrix = np.asarray(chosen["confusion"], dtype=float)
        counts = matrix.copy()
        if self.options.normalize:
            matrix = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
        n = len(matrix)
        names = list(ctx.classes) if len(ctx.classes) == n else [str(i) for i in range(n)]
        plt = _pyplot()
        side = min(4 + 0.45 * n, 24)
        figure, ax = plt.subplots(figsize=(side, side * 0.85))
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if self.options.normalize else None)
        figure.colorbar(image, ax=ax, fraction=0.046)
        ax.set_xticks(range(n), names, rotation=90 if n > 8 else 45, ha="right" if n <= 8 else "center",
                      fontsize=max(5, 10 - n // 8))
        ax.set_yticks(range(n), names, fontsize=max(5, 10 - n // 8))
        if n <= 20:  # numbers only while they stay readable
            for i in range(n):
                for j in range(n):
                    text = f"{matrix[i, j]:.2f}" if self.options.normalize else f"{int(counts[i, j])}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
        ax.set(xlabel="predicted", ylabel="true",
               title=f"Confusion matrix, epoch {chosen['epoch']} (val acc {chosen.get('val_acc1', 0):.3f})")
        return [save_figure(figure, ctx.out_dir / "confusion_matrix.png")]


@hookimpl
def register_visualizers(register) -> None:
    register(Curves)
    register(ConfusionMatrix)
