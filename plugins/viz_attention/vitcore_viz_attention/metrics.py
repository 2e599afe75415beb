"""Numbers computed from attention: per-token maps, entropy, attention distance, mass in a box.

Attention tensors are ``(B, heads, T, T)`` with the prefix tokens first and then the patches in
row-major grid order, as ``ViTView.capture_attention`` returns them. Grids and patches are
``(rows, columns)`` and ``(height, width)``: nothing here assumes a square image.
"""

from __future__ import annotations

from typing import Sequence

import torch


def query_attention(attention: torch.Tensor, query: int, num_prefix_tokens: int) -> torch.Tensor:
    """``(B, heads, N)``: how much token ``query`` attends to each patch (prefix columns dropped,
    so a row sums to the query's share of attention on patches, not to 1)."""
    return attention[:, :, query, num_prefix_tokens:]


def patch_centres(grid: tuple[int, int], patch_size: tuple[int, int]) -> torch.Tensor:
    """``(N, 2)`` pixel coordinates ``(y, x)`` of the patch centres, row-major."""
    rows = (torch.arange(grid[0], dtype=torch.float32) + 0.5) * patch_size[0]
    cols = (torch.arange(grid[1], dtype=torch.float32) + 0.5) * patch_size[1]
    return torch.cartesian_prod(rows, cols)


def attention_entropy(attention: torch.Tensor) -> torch.Tensor:
    """``(heads,)``: mean entropy (nats) of the attention rows over items and query tokens.

    Low entropy means a head looks at few tokens; ``log(T)`` is the uniform maximum.
    """
    p = attention.float()
    per_row = -(p * p.clamp_min(1e-12).log()).sum(dim=-1)
    return per_row.mean(dim=(0, 2))


def mean_attention_distance(attention: torch.Tensor, grid: tuple[int, int], patch_size: tuple[int, int],
                            num_prefix_tokens: int) -> torch.Tensor:
    """``(heads,)``: attention distance in pixels, as in the ViT paper's figure 7 (right).

    For each patch query: the distance to every patch key, weighted by the attention, averaged
    over queries and items. Prefix tokens have no position, so the patch-to-patch weights are
    renormalised per query to sum to 1 first.
    """
    p = num_prefix_tokens
    weights = attention.float()[:, :, p:, p:]
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    centres = patch_centres(grid, patch_size)
    distance = torch.cdist(centres, centres)
    return (weights * distance).sum(dim=-1).mean(dim=(0, 2))


def box_overlap(grid: tuple[int, int], patch_size: tuple[int, int], box: Sequence[float]) -> torch.Tensor:
    """``(rows, cols)``: the fraction of each patch's area inside ``box`` (x0, y0, x1, y1 pixels)."""
    x0, y0, x1, y1 = (float(v) for v in box)

    def along(count: int, size: int, low: float, high: float) -> torch.Tensor:
        start = torch.arange(count, dtype=torch.float32) * size
        return ((start + size).clamp(max=high) - start.clamp(min=low)).clamp(min=0) / size

    return along(grid[0], patch_size[0], y0, y1)[:, None] * along(grid[1], patch_size[1], x0, x1)[None, :]


def mass_in_box_ratio(relevance: torch.Tensor, patch_size: tuple[int, int], box: Sequence[float]) -> float:
    """Share of a ``(rows, cols)`` map's mass inside ``box``, divided by the box's share of the image.

    1 means the map ignores the box; above 1, it concentrates on it. Mass is taken as spread
    evenly over each patch, so a patch half inside the box contributes half its mass.
    """
    grid = (relevance.shape[0], relevance.shape[1])
    overlap = box_overlap(grid, patch_size, box)
    if not overlap.any():
        raise ValueError(f"box {list(box)} covers no part of the image")
    mass = float((relevance.float() * overlap).sum() / relevance.float().sum())
    return mass / float(overlap.mean())
