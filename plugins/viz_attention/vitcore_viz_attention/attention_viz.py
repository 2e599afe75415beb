"""Visualizers of attention: per-head maps, rollout, and statistics per layer and head.

Cheap to import: torch, numpy and matplotlib are imported when a picture is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vitcore.api import PreflightContext, VisualizerContext, VitcoreError, ViTView
from vitcore_viz_attention.base import SampleOptions, ViTVisualizer, capture, predict


class QueryOptions(SampleOptions):
    query_patch: tuple[int, int] | None = Field(
        None, description="Show the attention of this patch (grid row, column) instead of the class token's. "
                          "Default: the class token, or the centre patch for models without one (avg pooling).")


def query_token(view: ViTView, query_patch: tuple[int, int] | None) -> tuple[int, tuple[int, int] | None]:
    """The query token's index and, for a patch query, its grid position."""
    if query_patch is None and view.pooling == "token" and view.num_prefix_tokens > 0:
        return 0, None
    rows, cols = view.grid
    row, col = query_patch if query_patch is not None else (rows // 2, cols // 2)
    if not (0 <= row < rows and 0 <= col < cols):
        raise VitcoreError(f"query_patch {[row, col]} lies outside the model's {rows}x{cols} patch grid")
    return view.num_prefix_tokens + row * cols + col, (row, col)


class AttentionMapsOptions(QueryOptions):
    layers: list[int] | None = Field(None, description="Blocks to show (0 is the first); default all.")


class AttentionMaps(ViTVisualizer):
    """Per layer and head, where the class token (or a chosen patch) looks (viz/attention_maps_<i>.png)."""

    name = "attention_maps"
    Options = AttentionMapsOptions

    def preflight(self, ctx: PreflightContext) -> list[str]:
        """The blocks and the patch named must exist in the model: checked before the run trains."""
        if ctx.model is None:
            return []
        from vitcore.api import vit_view

        view = vit_view(ctx.model)
        if view is None:
            return []
        problems = []
        layers, patch = self.options.layers, self.options.query_patch
        if layers is not None and (not layers or any(not 0 <= layer < view.num_blocks for layer in layers)):
            problems.append(f"layers: {layers} must name blocks 0..{view.num_blocks - 1}")
        rows, cols = view.grid
        if patch is not None and not (0 <= patch[0] < rows and 0 <= patch[1] < cols):
            problems.append(f"query_patch: {list(patch)} lies outside the model's {rows}x{cols} patch grid")
        return problems

    def draw(self, ctx: VisualizerContext, view: ViTView, folder: Path) -> list[Path]:
        inputs = self.inputs(ctx, view)
        if inputs is None:
            return []
        from vitcore.api import save_figure
        from vitcore_viz_attention import drawing
        from vitcore_viz_attention.metrics import query_attention

        maps = capture(view, inputs.batch)
        predicted = predict(view, inputs.batch)
        layers = self.options.layers if self.options.layers is not None else list(range(len(maps)))
        if not layers or any(not 0 <= layer < len(maps) for layer in layers):
            raise VitcoreError(f"attention_maps.layers {layers} must name blocks 0..{len(maps) - 1}")
        query, patch = query_token(view, self.options.query_patch)
        who = "the class token" if patch is None else f"patch (row {patch[0]}, column {patch[1]})"
        plt = drawing.pyplot()
        columns = view.num_heads + 2
        paths = []
        for index, image in enumerate(inputs.images):
            figure, axes = plt.subplots(len(layers), columns, figsize=(1.8 * columns, 1.9 * len(layers) + 0.6),
                                        squeeze=False)
            rows = []
            for layer in layers:
                heads = query_attention(maps[layer][index:index + 1], query, view.num_prefix_tokens)[0]
                rows.append([(f"head {h}", heads[h]) for h in range(view.num_heads)]
                            + [("mean of heads", heads.mean(dim=0))])
            scale = drawing.shared_scale([weights for panels in rows for _, weights in panels])
            for row, (layer, panels) in enumerate(zip(layers, rows)):
                axes[row, 0].imshow(drawing.to_hwc(image))
                axes[row, 0].set_title(f"block {layer}", fontsize=8)
                axes[row, 0].set_axis_off()
                for column, (label, weights) in enumerate(panels, start=1):
                    heatmap = drawing.overlay(axes[row, column], image, weights.view(view.grid),
                                              f"{label}\n{float(weights.sum()):.0%} on patches", norm=scale)
                    if patch is not None:
                        drawing.mark_patch(axes[row, column], *patch, view.patch_size)
            drawing.colour_bar(figure, heatmap, axes, "attention weight of a patch",
                               uniform=1 / (view.grid[0] * view.grid[1]))
            caption = drawing.sample_title(inputs.labels[index], predicted[index], ctx.classes).replace("\n", ", ")
            figure.suptitle(f"Attention of {who} to the patches ({caption})", fontsize=10)
            paths.append(save_figure(figure, folder / f"attention_maps_{index}.png"))
        return paths


class RolloutOptions(SampleOptions):
    head_fusion: Literal["mean", "max", "min"] = Field("mean", description="How the heads of a layer combine.")
    discard_ratio: float = Field(0.0, ge=0, lt=1, description="Share of the weakest attention weights "
                                                             "zeroed in each layer before rolling out.")


class AttentionRollout(ViTVisualizer):
    """Attention rollout (Abnar & Zuidema 2020): which patches feed the prediction (viz/attention_rollout.png)."""

    name = "attention_rollout"
    Options = RolloutOptions

    def draw(self, ctx: VisualizerContext, view: ViTView, folder: Path) -> list[Path]:
        inputs = self.inputs(ctx, view)
        if inputs is None:
            return []
        from vitcore.api import save_figure
        from vitcore_viz_attention import drawing
        from vitcore_viz_attention.rollout import attention_rollout

        o = self.options
        relevance = attention_rollout(capture(view, inputs.batch), view.num_prefix_tokens, view.pooling,
                                      o.head_fusion, o.discard_ratio)
        predicted = predict(view, inputs.batch)
        count = len(inputs.images)
        plt = drawing.pyplot()
        figure, axes = plt.subplots(2, count, figsize=(2.3 * count + 0.8, 5.0), squeeze=False)
        scale = drawing.shared_scale(list(relevance))
        for index, image in enumerate(inputs.images):
            axes[0, index].imshow(drawing.to_hwc(image))
            axes[0, index].set_title(drawing.sample_title(inputs.labels[index], predicted[index], ctx.classes),
                                     fontsize=8)
            axes[0, index].set_axis_off()
            heatmap = drawing.overlay(axes[1, index], image, relevance[index].view(view.grid), "rollout", norm=scale)
        drawing.colour_bar(figure, heatmap, axes[1], "share of the relevance",
                           uniform=1 / (view.grid[0] * view.grid[1]))
        source = ("class token" if view.pooling == "token" and view.num_prefix_tokens
                  else "mean of the patch tokens")
        figure.suptitle(f"Attention rollout to the {source} ({o.head_fusion} over heads, "
                        f"{o.discard_ratio:.0%} discarded)", fontsize=10)
        return [save_figure(figure, folder / "attention_rollout.png")]


class StatsOptions(SampleOptions):
    bins: int = Field(60, ge=5, le=500, description="Bins of the attention-weight histograms (log-spaced).")


class AttentionStats(ViTVisualizer):
    """Attention entropy and distance per head and layer, weight histograms (viz/attention_*.png)."""

    name = "attention_stats"
    Options = StatsOptions

    def draw(self, ctx: VisualizerContext, view: ViTView, folder: Path) -> list[Path]:
        inputs = self.inputs(ctx, view)
        if inputs is None:
            return []
        import torch

        from vitcore_viz_attention.metrics import (
            attention_entropy,
            mean_attention_distance,
            patch_centres,
        )

        maps = capture(view, inputs.batch)
        entropy = torch.stack([attention_entropy(a) for a in maps])
        distance = torch.stack([mean_attention_distance(a, view.grid, view.patch_size, view.num_prefix_tokens)
                                for a in maps])
        centres = patch_centres(view.grid, view.patch_size)
        uniform = float(torch.cdist(centres, centres).mean())
        tokens = maps[0].shape[-1]
        return [
            _entropy_figure(entropy, tokens, folder / "attention_entropy.png"),
            _distance_figure(distance, uniform, view, folder / "attention_distance.png"),
            _histogram_figure(maps, self.options.bins, folder / "attention_histograms.png"),
        ]


def _entropy_figure(entropy, tokens: int, path: Path) -> Path:
    import math

    from vitcore.api import save_figure
    from vitcore_viz_attention.drawing import pyplot

    layers, heads = entropy.shape
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(max(4.0, 0.55 * heads + 2.5), max(3.0, 0.4 * layers + 1.5)))
    image = ax.imshow(entropy.numpy(), cmap="viridis", vmin=0, vmax=math.log(tokens), aspect="auto")
    figure.colorbar(image, ax=ax, label=f"entropy (nats); uniform over {tokens} tokens = {math.log(tokens):.2f}")
    if layers * heads <= 200:
        for layer in range(layers):
            for head in range(heads):
                value = float(entropy[layer, head])
                ax.text(head, layer, f"{value:.1f}", ha="center", va="center", fontsize=6,
                        color="black" if value > 0.6 * math.log(tokens) else "white")
    ax.set(xlabel="head", ylabel="block", title="Mean attention entropy per head",
           xticks=range(heads), yticks=range(layers))
    return save_figure(figure, path)


def _distance_figure(distance, uniform: float, view: ViTView, path: Path) -> Path:
    from vitcore.api import save_figure

    return save_figure(distance_figure(distance, uniform, view), path)


def distance_figure(distance, uniform: float, view: ViTView):
    """Mean attention distance, one point per head and block. The heads of a block sit side by side
    around its x position (they often measure alike), and the legend stands outside the axes, so no
    point hides under it."""
    import numpy as np

    from vitcore_viz_attention.drawing import pyplot

    layers, heads = distance.shape
    plt = pyplot()
    labelled = heads <= 16
    figure, ax = plt.subplots(figsize=(5.5 + (1.3 if labelled else 0), 4), layout="constrained")
    offsets = np.linspace(-0.3, 0.3, heads) if heads > 1 else np.zeros(1)
    colours = plt.get_cmap("tab10" if heads <= 10 else "viridis")(np.linspace(0, 1, heads) if heads > 10
                                                                 else np.arange(heads))
    for head in range(heads):
        ax.scatter(np.arange(layers) + offsets[head], distance[:, head].numpy(), s=16, color=colours[head],
                   edgecolor="white", linewidth=0.4, zorder=3, label=f"head {head}" if labelled else None)
    ax.axhline(uniform, color="grey", linestyle="--", linewidth=1, label="uniform attention", zorder=2)
    top = max(float(distance.max()), uniform) * 1.12  # room above the highest point and the uniform line
    ax.set(xlabel="block (network depth)", ylabel="mean attention distance (pixels)",
           title=f"Attention distance ({view.image_size[0]}x{view.image_size[1]} input, "
                 f"{view.patch_size[0]}x{view.patch_size[1]} patches)", ylim=(0, top), xticks=range(layers),
           xlim=(-0.6, layers - 0.4))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
              title=None if labelled else f"{heads} heads, colour: head")
    return figure


def _histogram_figure(maps, bins: int, path: Path) -> Path:
    import numpy as np

    from vitcore.api import save_figure
    from vitcore_viz_attention.drawing import pyplot

    plt = pyplot()
    edges = np.logspace(-6, 0, bins + 1)
    figure, ax = plt.subplots(figsize=(6, 4))
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(maps)))
    for layer, (attention, colour) in enumerate(zip(maps, colours)):
        values = attention.flatten().clamp(edges[0], 1.0).numpy()  # weights below 1e-6 land in the first bin
        counts, _ = np.histogram(values, edges)
        ax.stairs(counts / values.size, edges, color=colour, label=f"block {layer}")
    ax.set(xscale="log", yscale="log", xlabel="attention weight", ylabel="fraction of weights",
           title="Attention weights (all heads, tokens, images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return save_figure(figure, path)
