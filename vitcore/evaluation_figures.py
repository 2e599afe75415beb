"""The pictures of an evaluation: reliability diagram, labelled confusion matrix, confident mistakes.

Drawn from an evaluation's JSON figures (``vitcore.evaluation``), so they can be redrawn from the
file alone; the gallery also needs the images, from the dataset or the mistakes' file paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitcore.figures import pyplot, save_figure


def draw_reliability(result: dict[str, Any], path: Path, name: str) -> Path:
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, the gap,
    and how many images each bin holds; the title gives the ECE."""
    plt = pyplot()
    bins = result["calibration"]["bins"]
    width = bins[0]["upper"] - bins[0]["lower"]
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    figure, (ax, counts) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 1]})
    filled = [(c, b) for c, b in zip(centres, bins) if b["count"]]
    ax.bar([c for c, _ in filled], [b["accuracy"] for _, b in filled], width=width * 0.95, color="#4878d0",
           edgecolor="#274b8f", label="accuracy")
    ax.bar([c for c, _ in filled], [b["confidence"] - b["accuracy"] for _, b in filled],
           bottom=[b["accuracy"] for _, b in filled], width=width * 0.95, color="#ee854a", alpha=0.45,
           edgecolor="#c05a1f", label="gap to confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="#555", linewidth=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy",
           title=f"Reliability, {name}: ECE {result['calibration']['ece']:.3f} ({result['images']} images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    counts.bar(centres, [b["count"] for b in bins], width=width * 0.95, color="#8c8c8c")
    counts.set(xlabel="confidence (top-1 probability)", ylabel="images")
    counts.grid(alpha=0.3)
    return save_figure(figure, path)


def draw_confusion(result: dict[str, Any], path: Path, name: str) -> Path:
    """Rows (true classes) as fractions, with the counts in the cells while they stay readable."""
    import numpy as np

    counts = np.asarray(result["confusion"], dtype=float)
    matrix = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    names = list(result["classes"])
    n = len(names)
    plt = pyplot()
    side = min(4 + 0.4 * n, 22)
    figure, ax = plt.subplots(figsize=(side, side * 0.85))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fontsize = max(6, 10 - n // 10)
    ax.set_xticks(range(n), names, rotation=45 if n <= 8 else 90, ha="right" if n <= 8 else "center",
                  fontsize=fontsize)
    ax.set_yticks(range(n), names, fontsize=fontsize)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true",
           title=f"Confusion matrix, {name} (top-1 {result['acc1']:.3f}, {result['images']} images)")
    return save_figure(figure, path)


def draw_mistakes(result: dict[str, Any], path: Path, dataset: Any, name: str) -> Path | None:
    """A grid of the most confident wrong predictions, each captioned true -> predicted (confidence).

    None when there are no mistakes or no way to get their images.
    """
    mistakes = result.get("confident_mistakes") or []
    images = [_image(m, dataset) for m in mistakes]
    shown = [(m, im) for m, im in zip(mistakes, images) if im is not None]
    if not shown:
        return None
    plt = pyplot()
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    figure, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (mistake, image) in zip(axes.flat, shown):
        ax.imshow(image)
        ax.set_title(f"true {mistake['true']}\npred {mistake['predicted']} ({mistake['confidence']:.2f})",
                     fontsize=8, color="#b00000")
    figure.suptitle(f"Most confident mistakes, {name} ({result.get('mistakes', len(mistakes))} wrong of "
                    f"{result['images']})", fontsize=10)
    return save_figure(figure, path)


def _image(mistake: dict[str, Any], dataset: Any) -> Any:
    """The mistake's picture as a small RGB PIL image: from the dataset, else from its file."""
    from vitcore.errors import VitcoreError
    from vitcore.images import load_rgb

    image = None
    try:
        if dataset is not None:
            image = dataset[mistake["index"]][0]
        elif mistake.get("path"):
            image = load_rgb(mistake["path"])
    except (VitcoreError, OSError, IndexError):
        return None
    if image is None or not hasattr(image, "thumbnail"):
        return None
    image = image.copy()
    image.thumbnail((224, 224))
    return image
