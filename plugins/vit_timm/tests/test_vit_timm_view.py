"""The uniform ViT view of timm models: attention captured with fused attention in training."""

from __future__ import annotations

import pytest
import torch

from vitcore.api import vit_view


@pytest.mark.parametrize(
    ("name", "kwargs", "prefix", "grid", "pooling"),
    [
        ("vit_tiny_patch16_224", dict(img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2), 1, (4, 4), "token"),
        ("vit_tiny_patch16_224", dict(img_size=(32, 48), patch_size=8, depth=2, embed_dim=32, num_heads=2,
                                      reg_tokens=2, global_pool="avg"), 3, (4, 6), "avg"),
        ("deit_tiny_distilled_patch16_224", dict(img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2),
         2, (4, 4), "token"),
    ],
)
def test_view_reads_prefix_tokens_grid_and_pooling_from_the_model(name, kwargs, prefix, grid, pooling):
    import timm

    model = timm.create_model(name, num_classes=3, **kwargs).train()
    assert all(b.attn.fused_attn for b in model.blocks), "training uses the fused kernel"
    view = vit_view(model)
    assert view is not None
    assert (view.num_prefix_tokens, view.grid, view.pooling, view.num_blocks) == (prefix, grid, pooling, 2)
    tokens = prefix + grid[0] * grid[1]
    images = torch.randn(2, 3, grid[0] * 8, grid[1] * 8)
    maps = view.capture_attention(images)
    assert [m.shape for m in maps] == [(2, 2, tokens, tokens)] * 2
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 2, tokens), atol=1e-5)
    assert model.training and all(b.attn.fused_attn for b in model.blocks), "fused attention is restored"
    assert view.patch_embedding_weight().shape == (32, 3, 8, 8)
    assert [n for n, _, _ in view.mlp_layers()] == ["block0", "block1"]
    assert view.head().out_features == 3
