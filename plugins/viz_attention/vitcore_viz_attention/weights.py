"""Numbers computed from weights: position-embedding similarity, patch-filter principal
components, fully connected layers and their spectra, heatmaps small enough to draw."""

from __future__ import annotations

import math

import torch

from vitcore.api import ViTView


def position_similarity(embedding: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(rows, cols, rows, cols)``: cosine similarity of each patch's position embedding to all.

    ``embedding`` is ``(T, D)`` with any prefix rows first; the last ``rows * cols`` rows are the
    patches, so models whose prefix tokens carry no position embedding work as well.
    """
    count = grid[0] * grid[1]
    if embedding.shape[0] < count:
        raise ValueError(f"position embedding has {embedding.shape[0]} rows, fewer than {count} patches")
    patches = torch.nn.functional.normalize(embedding[-count:].float(), dim=-1)
    return (patches @ patches.T).view(grid[0], grid[1], grid[0], grid[1])


def principal_filters(weight: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` principal components of the patch projection's ``D`` filters.

    ``weight`` is ``(D, 3, ph, pw)``. Returns the components ``(k, 3, ph, pw)`` and the share of
    variance each explains ``(k,)``: the ViT paper's view of what the embedding filters look for.
    """
    filters = weight.float().flatten(1)
    centred = filters - filters.mean(dim=0, keepdim=True)
    _, singular, vectors = torch.linalg.svd(centred, full_matrices=False)
    variance = singular.square()
    k = min(count, vectors.shape[0])
    explained = variance[:k] / variance.sum().clamp_min(1e-12)
    return vectors[:k].view(k, *weight.shape[1:]), explained


def fc_layers(view: ViTView) -> list[tuple[str, torch.Tensor]]:
    """``(name, weight (out, in))`` of every block's MLP fc1 and fc2, then of the head."""
    layers = []
    for block, fc1, fc2 in view.mlp_layers():
        layers += [(f"{block}.fc1", fc1.weight.detach()), (f"{block}.fc2", fc2.weight.detach())]
    layers.append(("head", view.head().weight.detach()))
    return [(name, weight.float().cpu()) for name, weight in layers]


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """Descending singular values: how many directions a layer really uses, and its gain."""
    return torch.linalg.svdvals(weight.float())


def block_rms(matrix: torch.Tensor, max_side: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """A ``(out, in)`` matrix reduced to at most ``max_side`` per side, and the block size used.

    Big layers are shown as the root mean square of each block: averaging signed weights would
    cancel them out to a grey field, while RMS keeps where the large weights sit. A matrix that
    already fits is returned unchanged with block size ``(1, 1)``.
    """
    rows, cols = matrix.shape
    block = (math.ceil(rows / max_side), math.ceil(cols / max_side))
    if block == (1, 1):
        return matrix, block
    padded = torch.nn.functional.pad(matrix.float().square()[None, None],
                                     (0, -cols % block[1], 0, -rows % block[0]))
    sums = torch.nn.functional.avg_pool2d(padded, block, divisor_override=1)[0, 0]
    counts = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(torch.ones(1, 1, rows, cols), (0, -cols % block[1], 0, -rows % block[0])),
        block, divisor_override=1)[0, 0]
    return (sums / counts).sqrt(), block
