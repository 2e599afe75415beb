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


def overlay(ax: Any, image: torch.Tensor, heat: torch.Tensor, title: str = "", alpha: float = 0.6,
            norm: Any = None) -> Any:
    """Draw ``heat`` (any ``(rows, cols)`` grid) stretched over ``image`` (``(3, H, W)`` uint8).

    ``norm`` (from :func:`shared_scale`) gives every map of a figure one colour scale, which its
    colour bar explains; returns the heatmap, for that colour bar.
    """
    height, width = image.shape[1:]
    ax.imshow(to_hwc(image), extent=(0, width, height, 0))
    heatmap = ax.imshow(heat.float().cpu().numpy(), cmap=HEAT_CMAP, alpha=alpha, extent=(0, width, height, 0),
                        interpolation="nearest", norm=norm)
    ax.set_title(title, fontsize=7)
    ax.set_axis_off()
    return heatmap


def shared_scale(maps: Sequence[torch.Tensor]) -> Any:
    """One colour scale for several heatmaps: 0 to the largest value, square-root spaced.

    Attention weights of one figure differ by orders of magnitude (a head fixed on one patch beside
    a head spread over all of them); on a square-root scale both keep their structure, and a
    diffuse head no longer looks as bright as a sharp one, as it did with a scale per map.
    """
    from matplotlib.colors import PowerNorm

    top = max(float(m.max()) for m in maps) if maps else 1.0
    return PowerNorm(gamma=0.5, vmin=0.0, vmax=top if top > 0 else 1.0)


def colour_bar(figure: Any, heatmap: Any, axes: Any, label: str, uniform: float | None = None) -> Any:
    """The colour bar of a figure's shared scale, beside all of ``axes`` (drawn opaque, to be read);
    ``uniform`` marks in cyan the value of attention spread evenly over the patches."""
    bar = figure.colorbar(heatmap, ax=np.asarray(axes).ravel().tolist(), fraction=0.025, pad=0.02, shrink=0.9)
    bar.solids.set_alpha(1.0)
    bar.ax.tick_params(labelsize=7)
    notes = ["square-root scale"]
    if uniform is not None and uniform <= heatmap.norm.vmax:
        bar.ax.axhline(uniform, color="cyan", linewidth=1.5)
        notes.append(f"cyan: uniform, 1/{round(1 / uniform)}")
    bar.set_label(f"{label}\n({'; '.join(notes)})", fontsize=7)
    return bar


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
