"""Attention rollout (Abnar & Zuidema, 2020): how much each input patch feeds the pooled output.

One layer's attention only says where a token reads from in the previous layer. Rollout composes
the layers, counting each block's residual connection as attention of a token to itself, to
follow information from the input patches to the token the classifier reads.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

HeadFusion = Literal["mean", "max", "min"]


def fuse_heads(attention: torch.Tensor, fusion: HeadFusion = "mean") -> torch.Tensor:
    """``(B, heads, T, T)`` -> ``(B, T, T)``: one attention matrix per item for the layer.

    ``mean`` is the paper's choice; ``max`` follows whichever head attends most, which sharpens
    maps of models whose heads specialise; ``min`` keeps only what every head agrees on.
    """
    if fusion == "mean":
        return attention.mean(dim=1)
    if fusion == "max":
        return attention.amax(dim=1)
    if fusion == "min":
        return attention.amin(dim=1)
    raise ValueError(f"head fusion must be mean, max or min, not {fusion!r}")


def discard_lowest(matrix: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the smallest ``ratio`` of each item's weights in ``(B, T, T)``.

    Many tiny weights add up to a diffuse haze after a few matrix products; dropping them keeps
    the strong paths only. The identity added afterwards keeps every row non-zero.
    """
    if not 0 <= ratio < 1:
        raise ValueError(f"discard ratio must be in [0, 1), not {ratio}")
    flat = matrix.reshape(matrix.shape[0], -1)
    count = int(flat.shape[1] * ratio)
    if count == 0:
        return matrix
    lowest = flat.topk(count, dim=1, largest=False).indices
    return flat.scatter(1, lowest, 0.0).view_as(matrix)


def rollout(attentions: Sequence[torch.Tensor], fusion: HeadFusion = "mean",
            discard_ratio: float = 0.0) -> torch.Tensor:
    """``(B, T, T)``: how much each output token (row) draws on each input token (column).

    Per layer: fuse the heads, discard the weakest weights, add the identity (the residual
    connection) and renormalise the rows to sum to 1; then multiply the layers, the later ones
    on the left. Every row of the result sums to 1.
    """
    joint: torch.Tensor | None = None
    for attention in attentions:
        layer = fuse_heads(attention.float(), fusion)
        if discard_ratio:
            layer = discard_lowest(layer, discard_ratio)
        layer = layer + torch.eye(layer.shape[-1], dtype=layer.dtype, device=layer.device)
        layer = layer / layer.sum(dim=-1, keepdim=True)
        joint = layer if joint is None else layer @ joint
    if joint is None:
        raise ValueError("attention rollout needs the attention of at least one layer")
    return joint


def patch_relevance(joint: torch.Tensor, num_prefix_tokens: int, pooling: str) -> torch.Tensor:
    """``(B, N)``: the share of the pooled output that comes from each of the N patches.

    A class-token model is read from its first prefix token's row; an average-pooled one from
    the mean of the patch rows, because its output is the mean of the patch tokens. The prefix
    columns (mass left on the class or register tokens themselves) are dropped, so the patch
    entries no longer sum to 1: they are renormalised to sum to 1, which makes maps comparable
    across images and models (the dropped share is not shown). An item whose row keeps no patch
    mass at all (possible with a high discard ratio) gets all zeros.
    """
    if pooling == "token" and num_prefix_tokens > 0:
        row = joint[:, 0]
    else:
        row = joint[:, num_prefix_tokens:].mean(dim=1)
    patches = row[:, num_prefix_tokens:]
    return patches / patches.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(patches.dtype).tiny)


def attention_rollout(attentions: Sequence[torch.Tensor], num_prefix_tokens: int, pooling: str,
                      fusion: HeadFusion = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """``(B, N)`` rollout relevance of each patch for the pooled output; each row sums to 1."""
    return patch_relevance(rollout(attentions, fusion, discard_ratio), num_prefix_tokens, pooling)
