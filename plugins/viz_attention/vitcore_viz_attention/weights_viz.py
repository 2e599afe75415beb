"""Visualizers of weights: position embeddings, patch-embedding filters, fully connected layers.

They need no images. Cheap to import: torch, numpy and matplotlib load when a picture is drawn.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydantic import Field

from vitcore.api import VisualizerContext, ViTView
from vitcore_viz_attention.base import ScheduleOptions, ViTVisualizer


def _tile_ticks(ax, count: int, tile: int, axis: str, label: str) -> None:
    """Label tile centres 1..count along ``axis`` of a mosaic with one-pixel gaps."""
    positions = [i * (tile + 1) + (tile - 1) / 2 for i in range(count)]
    step = max(1, count // 12)
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter(positions[::step], [str(i + 1) for i in range(count)][::step], fontsize=7)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)


class PositionEmbedding(ViTVisualizer):
    """Cosine similarity of each patch's position embedding to all others (viz/position_embedding.png)."""

    name = "position_embedding"

    def draw(self, ctx: VisualizerContext, view: ViTView, folder: Path) -> list[Path]:
        embedding = view.position_embedding()
        if embedding is None:
            warnings.warn(f"{self.name}: the model has no position embeddings; skipped", stacklevel=3)
            return []
        from vitcore.api import save_figure
        from vitcore_viz_attention.drawing import mosaic, pyplot
        from vitcore_viz_attention.weights import position_similarity

        rows, cols = view.grid
        similarity = position_similarity(embedding.detach().cpu(), view.grid)
        picture = mosaic(similarity.reshape(rows * cols, rows, cols).numpy(), columns=cols)
        plt = pyplot()
        figure, ax = plt.subplots(figsize=(min(14.0, 2.5 + 0.5 * cols), min(14.0, 1.5 + 0.5 * rows)))
        image = ax.imshow(picture, cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
        figure.colorbar(image, ax=ax, fraction=0.046, label="cosine similarity")
        _tile_ticks(ax, cols, cols, "x", "input patch column")
        _tile_ticks(ax, rows, rows, "y", "input patch row")
        ax.set_title("Position embedding similarity\n(each tile: one patch's embedding against every patch)",
                     fontsize=10)
        return [save_figure(figure, folder / "position_embedding.png")]


class PatchEmbeddingOptions(ScheduleOptions):
    num_components: int = Field(28, ge=1, description="Principal components of the patch filters to show.")


class PatchEmbedding(ViTVisualizer):
    """Principal components of the patch projection filters, as RGB patches (viz/patch_embedding.png)."""

    name = "patch_embedding"
    Options = PatchEmbeddingOptions

    def draw(self, ctx: VisualizerContext, view: ViTView, folder: Path) -> list[Path]:
        from vitcore.api import save_figure
        from vitcore_viz_attention.drawing import mosaic, pyplot
        from vitcore_viz_attention.weights import principal_filters

        components, explained = principal_filters(view.patch_embedding_weight().detach().cpu(),
                                                  self.options.num_components)
        tiles = components.permute(0, 2, 3, 1)  # (k, ph, pw, 3) for imshow
        low = tiles.amin(dim=(1, 2, 3), keepdim=True)
        high = tiles.amax(dim=(1, 2, 3), keepdim=True)
        tiles = (tiles - low) / (high - low).clamp_min(1e-12)  # each component stretched to [0, 1]
        count = len(tiles)
        columns = min(7, count)
        picture = mosaic(tiles.numpy(), columns=columns, fill=1.0)
        plt = pyplot()
        rows = -(-count // columns)
        figure, ax = plt.subplots(figsize=(1.0 + 1.0 * columns, 1.2 + 1.0 * rows))
        ax.imshow(picture, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"Patch embedding: first {count} principal components of the {view.patch_size[0]}x"
                     f"{view.patch_size[1]} RGB filters\n({float(explained.sum()):.0%} of their variance; "
                     f"row-major, first = {float(explained[0]):.0%})", fontsize=9)
        return [save_figure(figure, folder / "patch_embedding.png")]


class FCLayersOptions(ScheduleOptions):
    max_heatmap_side: int = Field(128, ge=8, description="Heatmaps of bigger layers show the RMS of blocks "
                                                         "so that no side exceeds this many cells.")
    bins: int = Field(80, ge=5, le=1000, description="Bins of the weight histograms.")


class FCLayers(ViTVisualizer):
    """MLP fc1/fc2 and head weights: histograms, heatmaps, singular values, norms (viz/fc_*.png).

    During a run each layer's weights also go to TensorBoard as real histograms (``fc/<layer>``)
    whenever this visualizer draws, so ``every_n_epochs: 1`` shows how they change across training.
    """

    name = "fc_layers"
    Options = FCLayersOptions

    def draw(self, ctx: VisualizerContext, view: ViTView, folder: Path) -> list[Path]:
        from vitcore_viz_attention.weights import fc_layers

        layers = fc_layers(view)
        if ctx.log_histogram is not None:
            for name, weight in layers:
                ctx.log_histogram(f"fc/{name}", weight)
        return [
            _fc_histograms(layers, self.options.bins, folder / "fc_histograms.png"),
            _fc_heatmaps(layers, self.options.max_heatmap_side, folder / "fc_heatmaps.png"),
            _fc_spectra(layers, folder / "fc_spectra.png"),
        ]


def _kind(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _depth_colours(plt, count: int):
    import numpy as np

    return plt.get_cmap("viridis")(np.linspace(0, 1, max(count, 1)))


def _fc_histograms(layers, bins: int, path: Path) -> Path:
    import numpy as np

    from vitcore.api import save_figure
    from vitcore_viz_attention.drawing import pyplot

    plt = pyplot()
    kinds = ("fc1", "fc2", "head")
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    for ax, kind in zip(axes, kinds):
        chosen = [(name, weight) for name, weight in layers if _kind(name) == kind]
        limit = max(float(w.abs().max()) for _, w in chosen)
        edges = np.linspace(-limit, limit, bins + 1)
        colours = _depth_colours(plt, len(chosen)) if kind != "head" else ["black"]
        for (name, weight), colour in zip(chosen, colours):
            counts, _ = np.histogram(weight.flatten().numpy(), edges)
            ax.stairs(counts / weight.numel(), edges, color=colour, label=name.split(".")[0])
        ax.set(title=f"{kind} weights" + (" (colour: depth)" if kind != "head" else ""), xlabel="weight",
               ylabel="fraction of weights", yscale="log")
        ax.grid(alpha=0.3)
        if len(chosen) <= 12:
            ax.legend(fontsize=6)
    return save_figure(figure, path)


def _fc_heatmaps(layers, max_side: int, path: Path) -> Path:
    from vitcore.api import save_figure
    from vitcore_viz_attention.drawing import pyplot
    from vitcore_viz_attention.weights import block_rms

    plt = pyplot()
    blocks = [name for name, _ in layers if _kind(name) == "fc1"]
    rows = len(blocks) + 1
    figure, axes = plt.subplots(rows, 2, figsize=(9, 2.6 * rows), squeeze=False, layout="constrained")
    places = {name: (index // 2, index % 2) for index, (name, _) in enumerate(layers)}
    axes[-1, 1].set_axis_off()  # the head has the last row to itself
    for name, weight in layers:
        ax = axes[places[name]]
        shown, block = block_rms(weight, max_side)
        if block == (1, 1):
            limit = float(weight.abs().max()) or 1.0
            image = ax.imshow(shown.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                              interpolation="nearest")
            how = "signed"
        else:
            image = ax.imshow(shown.numpy(), cmap="magma", vmin=0, aspect="auto", interpolation="nearest")
            how = f"RMS of {block[0]}x{block[1]} blocks"
        figure.colorbar(image, ax=ax, fraction=0.046)
        ax.set_title(f"{name} {tuple(weight.shape)}, {how}", fontsize=8)
        ax.set(xlabel="input", ylabel="output")
        for axis in (ax.xaxis, ax.yaxis):
            axis.get_major_locator().set_params(integer=True)
    return save_figure(figure, path)


def _fc_spectra(layers, path: Path) -> Path:
    from vitcore.api import save_figure

    return save_figure(fc_spectra_figure(layers), path)


def fc_spectra_figure(layers):
    """Singular values of every FC layer, and their Frobenius and spectral norms by block."""
    import torch

    from vitcore_viz_attention.drawing import pyplot
    from vitcore_viz_attention.weights import singular_values

    plt = pyplot()
    figure, (spectrum_ax, norm_ax) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    blocks = [name.split(".")[0] for name, _ in layers if _kind(name) == "fc1"]
    colours = _depth_colours(plt, len(blocks))
    norms: dict[str, list[tuple[float, float]]] = {"fc1": [], "fc2": [], "head": []}
    for name, weight in layers:
        values = singular_values(weight)
        kind = _kind(name)
        norms[kind].append((float(torch.linalg.vector_norm(weight)), float(values[0])))
        if kind == "head":
            spectrum_ax.plot(values.numpy(), color="black", linewidth=1.5, label="head")
        else:
            colour = colours[blocks.index(name.split(".")[0])]
            spectrum_ax.plot(values.numpy(), color=colour, linestyle="-" if kind == "fc1" else "--",
                             label=name if len(blocks) <= 6 else None)
    spectrum_ax.set(yscale="log", xlabel="index", ylabel="singular value",
                    title="Singular values (solid fc1, dashed fc2, colour: depth)")
    spectrum_ax.grid(alpha=0.3)
    spectrum_ax.legend(fontsize=6, ncol=2)
    depth = list(range(len(blocks)))
    # fc1 and fc2 often have almost the same norms: each kind keeps its colour and marker and sits a
    # little left or right of its block, so neither hides the other.
    for kind, marker, colour, shift in (("fc1", "o", "C0", -0.12), ("fc2", "s", "C1", 0.12)):
        frobenius, spectral = zip(*norms[kind])
        x = [d + shift for d in depth]
        norm_ax.plot(x, frobenius, marker=marker, color=colour, label=f"{kind} Frobenius")
        norm_ax.plot(x, spectral, marker=marker, color=colour, linestyle="--", markerfacecolor="white",
                     label=f"{kind} spectral")
    (head_frobenius, head_spectral), = norms["head"]
    norm_ax.scatter([len(blocks)] * 2, [head_frobenius, head_spectral], color="black", marker="*", s=60,
                    label="head (Frobenius, spectral)")
    norm_ax.set_xticks(depth + [len(blocks)], blocks + ["head"], rotation=45 if len(blocks) > 6 else 0,
                       fontsize=7)
    norm_ax.set(ylabel="norm", title="Weight norms by layer (solid Frobenius, dashed spectral)")
    norm_ax.grid(alpha=0.3)
    norm_ax.legend(fontsize=6)
    return figure
