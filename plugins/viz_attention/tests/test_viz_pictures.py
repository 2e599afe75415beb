"""What the pictures show: a colour scale beside every attention heatmap, no point under a legend,
fc1 and fc2 both visible where their norms are equal."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from vitcore_viz_attention.attention_viz import AttentionMaps, AttentionRollout, distance_figure
from vitcore_viz_attention.weights_viz import fc_spectra_figure

from vitcore.api import Preprocessing, VisualizerContext, vit_view
from vitcore.testing import colour_images

#: The low end of matplotlib's "inferno", the heatmaps' colour map: pure only in an opaque colour
#: bar (over the images the maps are drawn translucent); cyan marks the uniform level on that bar.
INFERNO_BOTTOM, CYAN = (0, 0, 4), (0, 255, 255)


def _count(path, colour: tuple[int, int, int]) -> int:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return int((np.abs(pixels - colour).sum(axis=-1) < 12).sum())


def test_attention_maps_and_rollout_have_a_colour_scale(tmp_path, torchvision_vit):
    images = colour_images(2, 32)
    ctx = VisualizerContext(run_dir=tmp_path, records=[], classes=["a", "b", "c"], model=torchvision_vit,
                            preprocessing=Preprocessing(image_size=32), epoch=1, final=True,
                            samples=[(images[0], 0), (images[1], 1)])
    maps = AttentionMaps(AttentionMaps.Options(num_samples=1)).render(ctx)
    rollout = AttentionRollout(AttentionRollout.Options(num_samples=2)).render(ctx)
    for path in [*maps, *rollout]:
        assert _count(path, INFERNO_BOTTOM) >= 20 and _count(path, CYAN) >= 5, path.name


def _display_points(ax, collections) -> np.ndarray:
    return np.concatenate([ax.transData.transform(c.get_offsets()) for c in collections])


def test_attention_distance_points_are_neither_under_the_legend_nor_on_each_other(torchvision_vit):
    view = vit_view(torchvision_vit)
    distance = torch.full((view.num_blocks, 4), 16.0)  # four heads measuring the same, at the uniform level
    figure = distance_figure(distance, 16.0, view)
    figure.canvas.draw()
    ax = figure.axes[0]
    points = _display_points(ax, ax.collections)
    assert len(points) == view.num_blocks * 4
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert not legend.overlaps(axes_box), "the legend stands beside the axes"
    assert all(axes_box.contains(x, y) for x, y in points), "every point inside the axes, none at its edge"
    gaps = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(len(points)) * 1e9
    assert gaps.min() > 4, "heads of one block side by side, not on top of each other"


def test_fc1_and_fc2_norms_stay_visible_when_equal():
    torch.manual_seed(0)
    weight = torch.randn(64, 16)
    layers = [("block0.fc1", weight), ("block0.fc2", weight.clone()), ("block1.fc1", weight * 2),
              ("block1.fc2", weight * 2), ("head", torch.randn(3, 16))]
    figure = fc_spectra_figure(layers)
    figure.canvas.draw()
    norm_ax = figure.axes[1]
    lines = {line.get_label(): line for line in norm_ax.get_lines()}
    for norm in ("Frobenius", "spectral"):
        fc1, fc2 = lines[f"fc1 {norm}"], lines[f"fc2 {norm}"]
        np.testing.assert_allclose(fc1.get_ydata(), fc2.get_ydata())  # the same norms...
        assert fc1.get_color() != fc2.get_color()
        one, two = (norm_ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
                    for line in (fc1, fc2))
        size = max(fc1.get_markersize(), fc2.get_markersize()) * figure.dpi / 72
        assert (np.linalg.norm(one - two, axis=-1) > size).all(), "...drawn side by side, fc1 not under fc2"
