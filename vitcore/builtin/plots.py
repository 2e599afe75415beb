"""Built-in visualizers drawn from metrics.jsonl alone: training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from pydantic import Field

from vitcore import hookimpl
from vitcore.components import Options, Visualizer, VisualizerContext
from vitcore.figures import pyplot as _pyplot
from vitcore.figures import save_figure

Record = Mapping[str, Any]


def _series(records: Sequence[Record], event: str, key: str, x: str = "step") -> tuple[list, list]:
    rows = [r for r in records if r.get("event") == event and isinstance(r.get(key), (int, float))]
    return [r[x] for r in rows], [r[key] for r in rows]


def _finish(ax: Any, **labels: Any) -> None:
    ax.set(**labels)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


class CurvesOptions(Options):
    log_scale_loss: bool = Field(False, description="Draw the loss on a logarithmic axis.")


#: One colour per series, the same in every panel (matplotlib's first cycle colours).
COLOURS = {"train": "C0", "validation": "C1", "validation top-5": "C2", "learning rate": "C4"}


def _plot(ax: Any, x: Sequence, y: Sequence, series: str, **style: Any) -> None:
    """Draw one series in its colour; an empty series draws nothing (so it gets no legend entry)."""
    if y:
        ax.plot(x, y, color=COLOURS[series], **style)


def class_count(records: Sequence[Record], classes: Sequence[str]) -> int | None:
    """How many classes the run has: the context's names, else the epoch records' confusion matrix."""
    if classes:
        return len(classes)
    for record in reversed(records):
        for key in ("confusion", "val_per_class_acc"):
            if isinstance(record.get(key), list) and record[key]:
                return len(record[key])
    return None


class Curves(Visualizer):
    """Loss, accuracy and learning-rate curves (curves.png). Top-5 accuracy is left out with 5 classes
    or fewer, where it is always 1."""

    name = "curves"
    Options = CurvesOptions

    def render(self, ctx: VisualizerContext) -> list[Path]:
        records = list(ctx.records)
        if not records:
            return []
        plt = _pyplot()
        figure, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(15, 4))

        _plot(loss_ax, *_series(records, "train", "loss"), "train", alpha=0.35, linewidth=1,
              label="train (per log interval)")
        _plot(loss_ax, *_series(records, "epoch", "train_loss"), "train", marker="o", label="train (epoch)")
        _plot(loss_ax, *_series(records, "epoch", "val_loss"), "validation", marker="o", label="validation")
        if self.options.log_scale_loss:
            loss_ax.set_yscale("log")
        _finish(loss_ax, title="Loss", xlabel="optimizer step", ylabel="cross-entropy")

        classes = class_count(records, ctx.classes)
        accuracies = [("train_acc", "train", "train"), ("val_acc1", "validation", "validation top-1")]
        if classes is None or classes > 5:
            accuracies.append(("val_acc5", "validation top-5", "validation top-5"))
        for key, series, label in accuracies:
            _plot(acc_ax, *_series(records, "epoch", key, x="epoch"), series, marker="o", label=label)
        acc_ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
        _finish(acc_ax, title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))

        # Per step when train records exist; a run logging rarely still has one value per epoch.
        x, y = _series(records, "train", "lr")
        _plot(lr_ax, *((x, y) if y else _series(records, "epoch", "lr")), "learning rate",
              marker=None if y else "o")
        _finish(lr_ax, title="Learning rate", xlabel="optimizer step")
        return [save_figure(figure, ctx.out_dir / "curves.png")]


class ConfusionOptions(Options):
    which: Literal["best", "last"] = Field("best", description="Epoch whose confusion matrix is drawn.")
    normalize: bool = Field(True, description="Show each row (true class) as fractions.")


def choose_epoch(records: Sequence[Record], which: Literal["best", "last"]) -> Record | None:
    """The epoch record whose confusion matrix to draw: the last best one, or simply the last."""
    epochs = [r for r in records if r.get("event") == "epoch" and r.get("confusion")]
    if which == "best":
        best = [r for r in epochs if r.get("best")]
        epochs = best or epochs
    return epochs[-1] if epochs else None


class ConfusionMatrix(Visualizer):
    """Validation confusion matrix of the best (or last) epoch (confusion_matrix.png)."""

    name = "confusion_matrix"
    Options = ConfusionOptions

    def render(self, ctx: VisualizerContext) -> list[Path]:
        chosen = choose_epoch(ctx.records, self.options.which)
        if chosen is None:
            return []
        import numpy as np

        counts = np.asarray(chosen["confusion"], dtype=float)
        matrix = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None) if self.options.normalize else counts
        n = len(matrix)
        names = list(ctx.classes) if len(ctx.classes) == n else [str(i) for i in range(n)]
        plt = _pyplot()
        side = min(4 + 0.4 * n, 22)  # about 0.4 inch a class: 50 class names stay legible
        figure, ax = plt.subplots(figsize=(side, side * 0.85))
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if self.options.normalize else None)
        figure.colorbar(image, ax=ax, fraction=0.046)
        fontsize = max(6, 10 - n // 10)
        ax.set_xticks(range(n), names, rotation=45 if n <= 8 else 90, ha="right" if n <= 8 else "center",
                      fontsize=fontsize)
        ax.set_yticks(range(n), names, fontsize=fontsize)
        if n <= 20:  # numbers in the cells only while they stay readable
            for i in range(n):
                for j in range(n):
                    text = f"{matrix[i, j]:.2f}" if self.options.normalize else f"{int(counts[i, j])}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
        accuracy = chosen.get("val_acc1")
        suffix = f" (val acc {accuracy:.3f})" if isinstance(accuracy, (int, float)) else ""
        ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix, epoch {chosen.get('epoch')}{suffix}")
        return [save_figure(figure, ctx.out_dir / "confusion_matrix.png")]


@hookimpl
def register_visualizers(register) -> None:
    register(Curves)
    register(ConfusionMatrix)
