"""Attention rollout on hand-made attention matrices."""

from __future__ import annotations

import pytest
import torch
from vitcore_viz_attention.rollout import (
    attention_rollout,
    discard_lowest,
    fuse_heads,
    patch_relevance,
    rollout,
)


def _softmax_attention(batch: int, heads: int, tokens: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, heads, tokens, tokens, generator=generator) * 3).softmax(dim=-1)


def test_identity_attention_rolls_out_to_the_identity_and_avg_pooling_sees_every_patch_alike():
    identity = torch.eye(5).expand(2, 3, 5, 5)
    joint = rollout([identity, identity, identity])
    assert torch.allclose(joint, torch.eye(5).expand(2, 5, 5))
    # Each patch keeps only itself; the mean of the patch rows covers all four patches equally.
    relevance = attention_rollout([identity] * 3, num_prefix_tokens=1, pooling="avg")
    assert torch.allclose(relevance, torch.full((2, 4), 0.25))


def test_uniform_attention_gives_uniform_patch_relevance():
    uniform = torch.full((1, 2, 6, 6), 1 / 6)
    relevance = attention_rollout([uniform] * 4, num_prefix_tokens=2, pooling="token")
    assert torch.allclose(relevance, torch.full((1, 4), 0.25))


def test_two_layers_match_the_papers_formula_written_out():
    a1, a2 = _softmax_attention(1, 1, 3, seed=1)[0, 0], _softmax_attention(1, 1, 3, seed=2)[0, 0]
    eye = torch.eye(3)
    expected = (0.5 * a2 + 0.5 * eye) @ (0.5 * a1 + 0.5 * eye)  # rows of W + I sum to 2
    joint = rollout([a1[None, None], a2[None, None]])[0]
    assert torch.allclose(joint, expected, atol=1e-6)
    # The class token's row without its own column, renormalised.
    relevance = patch_relevance(joint[None], num_prefix_tokens=1, pooling="token")[0]
    assert torch.allclose(relevance, expected[0, 1:] / expected[0, 1:].sum(), atol=1e-6)


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5, 0.9])
def test_rows_sum_to_one_whatever_the_fusion_and_discard(fusion, discard_ratio):
    maps = [_softmax_attention(3, 4, 7, seed=s) for s in range(3)]
    joint = rollout(maps, fusion, discard_ratio)
    assert torch.allclose(joint.sum(dim=-1), torch.ones(3, 7), atol=1e-5)
    assert (joint >= 0).all()
    relevance = attention_rollout(maps, num_prefix_tokens=2, pooling="token", fusion=fusion,
                                  discard_ratio=discard_ratio)
    assert relevance.shape == (3, 5)
    sums = relevance.sum(dim=-1)
    # Renormalised after dropping the prefix columns; with heavy discarding an item's class token
    # may keep no path from any patch at all, and its map is then all zeros.
    assert (((sums - 1).abs() < 1e-5) | (sums == 0)).all()
    if discard_ratio == 0:
        assert torch.allclose(sums, torch.ones(3), atol=1e-5)


def test_head_fusion():
    heads = torch.tensor([[[0.2, 0.8], [0.5, 0.5]], [[0.6, 0.4], [0.1, 0.9]]])[None]
    assert torch.allclose(fuse_heads(heads, "mean")[0], torch.tensor([[0.4, 0.6], [0.3, 0.7]]))
    assert torch.allclose(fuse_heads(heads, "max")[0], torch.tensor([[0.6, 0.8], [0.5, 0.9]]))
    assert torch.allclose(fuse_heads(heads, "min")[0], torch.tensor([[0.2, 0.4], [0.1, 0.5]]))
    with pytest.raises(ValueError, match="mean, max or min"):
        fuse_heads(heads, "median")  # type: ignore[arg-type]


def test_discard_ratio_zeroes_the_weakest_weights_of_each_item():
    matrices = torch.tensor([[[0.1, 0.9], [0.4, 0.6]], [[0.7, 0.3], [0.2, 0.8]]])
    kept = discard_lowest(matrices, 0.5)
    assert torch.equal(kept, torch.tensor([[[0.0, 0.9], [0.0, 0.6]], [[0.7, 0.0], [0.0, 0.8]]]))
    assert discard_lowest(matrices, 0.0) is matrices
    with pytest.raises(ValueError, match="discard ratio"):
        discard_lowest(matrices, 1.0)


def test_discarding_sharpens_the_map_towards_the_strong_path():
    # The class token attends mostly to patch 0 and a little to everything else.
    attention = torch.full((1, 1, 4, 4), 0.1)
    attention[0, 0, 0] = torch.tensor([0.1, 0.6, 0.15, 0.15])
    plain = attention_rollout([attention], 1, "token")
    sharp = attention_rollout([attention], 1, "token", discard_ratio=0.94)  # keeps only 0.6
    assert plain[0, 0] < sharp[0, 0] == pytest.approx(1.0)


def test_average_pooling_reads_the_mean_of_the_patch_rows():
    joint = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.25, 0.75]]])
    relevance = patch_relevance(joint, num_prefix_tokens=1, pooling="avg")
    assert torch.allclose(relevance, torch.tensor([[0.75 / 1.5, 0.75 / 1.5]]))


def test_no_layers_is_an_error():
    with pytest.raises(ValueError, match="at least one layer"):
        rollout([])
