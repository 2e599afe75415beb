"""The uniform ViT view of hf_vit models: geometry and attention capture on SDPA-trained models."""

from __future__ import annotations

import torch

from vitcore.api import ModelContext, registry, vit_view


def _build(options: dict):
    entry = registry("models").get("hf_vit")
    builder = entry.component(entry.component.Options.model_validate(options))
    return builder.build(ModelContext(num_classes=3, class_names=["a", "b", "c"]))


def test_view_of_an_hf_model(tiny):
    model = _build({**tiny, "num_hidden_layers": 2}).train()
    view = vit_view(model)
    assert view is not None
    assert (view.grid, view.num_prefix_tokens, view.num_blocks, view.num_heads) == ((4, 4), 1, 2, 2)
    maps = view.capture_attention(torch.randn(2, 3, 32, 32))
    assert [m.shape for m in maps] == [(2, 2, 17, 17)] * 2
    assert torch.allclose(maps[1].sum(-1), torch.ones(2, 2, 17), atol=1e-5)
    assert model.training and model.hf_model.config._attn_implementation == "sdpa"
    assert view.position_embedding().shape == (17, 32)
    assert view.patch_embedding_weight().shape == (32, 3, 8, 8)
    assert [name for name, _, _ in view.mlp_layers()] == ["layer0", "layer1"]
    assert view.head().out_features == 3
