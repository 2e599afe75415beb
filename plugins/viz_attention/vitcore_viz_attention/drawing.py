"""Matplotlib helpers shared by the visualizers: heatmaps over images, tile mosaics, labels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

#: Heatmaps over photographs: dark where nothing is attended, so the picture shows through.
HEAT_CMAP = "inferno"


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def to_hwc(image: torch.Tensor) -> np.ndarray:
    """A ``(3, H, W)`` uint8 tensor as an ``(H, W, 3)`` array for ``imshow``."""
    return image.permute(1, 2, 0).cpu().numpy()


def overlay(ax: Any, image: torch.Tensor, heat: torch.Tensor, title: str = "", alpha: float = 0.6) -> None:
    """Draw ``heat`` (any ``(rows, cols)`` grid) stretched over ``image`` (``(3, H, W)`` uint8).

    Each map gets its own colour scale: the point is where a head looks, and scales differ
    by orders of magnitude between heads.
    """
    height, width = image.shape[1:]
    ax.imshow(to_hwc(image), extent=(0, width, height, 0))
    ax.imshow(heat.float().cpu().numpy(), cmap=HEAT_CMAP, alpha=alpha, extent=(0, width, height, 0),
              interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_axis_off()


def mark_patch(ax: Any, row: int, col: int, patch_size: tuple[int, int]) -> None:
    """Outline the query patch of a patch-to-patches attention map."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((col * patch_size[1], row * patch_size[0]), patch_size[1], patch_size[0],
                           fill=False, edgecolor="cyan", linewidth=1.2))


def mosaic(tiles: np.ndarray, columns: int, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """Lay ``(n, h, w[, c])`` tiles out in rows of ``columns`` with ``gap`` pixels between them.

    One ``imshow`` of a mosaic is far faster than hundreds of sub-plots (a 24x24 patch grid).
    """
    count, height, width = tiles.shape[:3]
    rows = -(-count // columns)
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap, *tiles.shape[3:])
    out = np.full(shape, fill, dtype=np.float32)
    for index in range(count):
        r, c = divmod(index, columns)
        out[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = tiles[index]
    return out


def sample_title(label: int, predicted: int | None, classes: Sequence[str]) -> str:
    """``true: circle / predicted: square``; ``?`` for images without a known label."""

    def name(index: int | None) -> str:
        return classes[index] if index is not None and 0 <= index < len(classes) else "?"

    text = f"true: {name(label)}"
    return text if predicted is None else f"{text}\npredicted: {name(predicted)}"
