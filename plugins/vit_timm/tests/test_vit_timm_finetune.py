"""Fine-tuning modes and layer-wise learning-rate decay, as the engine's optimizer sees them."""

from __future__ import annotations

import pytest
import torch
from vitcore_vit_timm.models import TimmViT
from vitcore_vit_timm.options import TimmViTOptions

from vitcore.api import ModelContext
from vitcore.testing import engine_optimizer, engine_param_groups


def _builder_and_model(**options) -> tuple[TimmViT, torch.nn.Module]:
    builder = TimmViT(TimmViTOptions(**options))
    return builder, builder.build(ModelContext(3, ["a", "b", "c"]))


def _trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _engine_groups(builder: TimmViT, model: torch.nn.Module, lr: float = 1.0) -> list[dict]:
    """What the trainer hands the optimizer."""
    return engine_param_groups(builder, model, 0.05, lr)


def _names(model: torch.nn.Module, groups: list[dict]) -> list[str]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for g in groups for p in g["params"]]


def test_linear_probe_trains_only_the_head(tiny):
    builder, model = _builder_and_model(**tiny, finetune="linear_probe")
    assert _trainable(model) == {"head.weight", "head.bias"}
    assert sorted(_names(model, _engine_groups(builder, model))) == ["head.bias", "head.weight"]


def test_freeze_blocks_freezes_the_patch_embedding_tokens_and_the_first_blocks(tiny):
    builder, model = _builder_and_model(**tiny, finetune="freeze_blocks", freeze_blocks=1)
    frozen = {n for n, _ in model.named_parameters()} - _trainable(model)
    assert {n.split(".")[0] for n in frozen} == {"patch_embed", "cls_token", "pos_embed", "blocks"}
    assert {n for n in frozen if n.startswith("blocks.")} == {n for n, _ in model.named_parameters()
                                                            if n.startswith("blocks.0.")}
    assert all(n.startswith(("blocks.1.", "norm.", "head.")) for n in _trainable(model))
    assert set(_names(model, _engine_groups(builder, model))) == _trainable(model)


def test_layer_decay_lowers_the_learning_rate_layer_by_layer_towards_the_input(tiny):
    builder, model = _builder_and_model(**tiny, layer_decay=0.5)
    groups = builder.param_groups(model, 0.05, lr=2.0)
    names = _names(model, groups)
    assert sorted(names) == sorted(n for n, _ in model.named_parameters()), "each parameter exactly once"
    lr = {n: g["lr"] for g in groups for n in _names(model, [g])}
    # timm's layers: stem 0, blocks 1-2 (the final norm with the last block), head 3 = 2.0 * 0.5 ** (3 - layer).
    assert lr["patch_embed.proj.weight"] == lr["pos_embed"] == lr["cls_token"] == 0.25
    assert lr["blocks.0.attn.qkv.weight"] == 0.5
    assert lr["blocks.1.mlp.fc2.weight"] == lr["norm.weight"] == 1.0
    assert lr["head.weight"] == 2.0
    decay = {n: g["weight_decay"] for g in groups for n in _names(model, [g])}
    assert decay["blocks.0.attn.qkv.weight"] == 0.05
    assert decay["pos_embed"] == decay["cls_token"] == decay["blocks.0.attn.qkv.bias"] == decay["norm.weight"] == 0

    # The engine's schedule scales every group alike, keeping the ratios.
    optimizer, scheduler = engine_optimizer(groups, steps_per_epoch=2, epochs=2, lr=2.0, warmup_epochs=0,
                                            schedule="cosine")
    optimizer.step()
    scheduler.step()
    head_lr = next(g["lr"] for g in optimizer.param_groups if g["params"][0] is model.head.weight)
    for group in optimizer.param_groups:
        assert group["lr"] / head_lr == pytest.approx(group["initial_lr"] / 2.0)


def test_layer_decay_leaves_frozen_parameters_out(tiny):
    builder, model = _builder_and_model(**tiny, finetune="freeze_blocks", freeze_blocks=1, layer_decay=0.75)
    assert set(_names(model, builder.param_groups(model, 0.05, 1.0))) == _trainable(model)


def test_no_weight_decay_lists_the_models_own_exemptions(tiny):
    builder, model = _builder_and_model(**tiny)
    assert builder.no_weight_decay(model) == {"cls_token", "pos_embed"}
    assert builder.param_groups(model, 0.05, 1.0) is None, "without layer_decay the engine's groups apply"
