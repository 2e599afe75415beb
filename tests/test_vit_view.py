"""The uniform ViT view of torchvision's model: attention capture without changing training."""

from __future__ import annotations

import torch
import torchvision

from vitcore.plugins import get_host


def _model() -> torchvision.models.VisionTransformer:
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=16, mlp_dim=32, num_classes=3)


def test_view_describes_the_model_and_captures_attention_per_block_and_head():
    model = _model().train()
    view = get_host().vit_view(model)
    assert view is not None
    assert (view.grid, view.num_prefix_tokens, view.num_blocks, view.num_heads) == ((4, 4), 1, 2, 2)
    images = torch.randn(3, 3, 32, 32)
    before = model.eval()(images)
    model.train()
    maps = view.capture_attention(images)
    assert len(maps) == 2 and all(m.shape == (3, 2, 17, 17) for m in maps)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 2, 17))
    assert model.training, "training mode is restored"
    assert all("forward" not in b.self_attention.__dict__ for b in model.encoder.layers)
    assert torch.allclose(model.eval()(images), before), "the model computes what it computed before"
    assert view.position_embedding().shape == (17, 16)
    assert view.patch_embedding_weight().shape == (16, 3, 8, 8)
    assert [name for name, _, _ in view.mlp_layers()] == ["block0", "block1"]
    assert view.head().out_features == 3


def test_models_of_other_libraries_get_no_torchvision_view():
    assert get_host().vit_view(torch.nn.Linear(3, 3)) is None
