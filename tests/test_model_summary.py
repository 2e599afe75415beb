"""The architecture overview: per-module shapes, parameters and FLOPs, totals, ViT geometry."""

from __future__ import annotations

import json

import torch
import torchvision

from vitcore.model_summary import format_table, summarize


def _vit(**changes) -> torchvision.models.VisionTransformer:
    torch.manual_seed(0)
    options = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32,
               "mlp_dim": 128, "num_classes": 3, **changes}
    return torchvision.models.VisionTransformer(**options)


def _rows(summary: dict) -> dict[str, dict]:
    return {row["name"]: row for row in summary["rows"]}


def test_parameters_shapes_and_geometry_of_a_vit():
    model = _vit().train()
    summary = summarize(model, 32, batch=2)
    assert model.training, "the model's mode is restored"
    assert summary["params"] == sum(p.numel() for p in model.parameters()) == summary["trainable_params"]
    rows = _rows(summary)
    assert rows[""]["params"] == summary["params"] and rows[""]["output_shape"] == [2, 3]
    assert rows["conv_proj"]["output_shape"] == [2, 32, 4, 4]
    assert rows["encoder.layers.encoder_layer_1"]["output_shape"] == [2, 17, 32]
    assert rows["encoder.layers.encoder_layer_0.mlp.0"]["output_shape"] == [2, 17, 128]
    assert rows["heads.head"]["output_shape"] == [2, 3]
    assert rows["encoder.layers.encoder_layer_0.mlp.0"]["params"] == 32 * 128 + 128
    assert summary["geometry"] == {"image_size": [32, 32], "patch_size": [8, 8], "grid": [4, 4], "patches": 16,
                                   "prefix_tokens": 1, "tokens": 17, "blocks": 2, "heads": 2, "pooling": "token"}
    json.dumps(summary)  # saved as JSON in runs


def test_flops_are_about_two_per_parameter_per_token_and_include_attention():
    summary = summarize(_vit(), 32)
    params, tokens = summary["params"], 17
    assert 0.5 < summary["flops"] / (2 * params * tokens) < 2
    rows = _rows(summary)
    # The attention of one block: input and output projections (2 * 17 * 32 * (96 + 32) FLOPs)
    # and the two score/value products (4 * 17 * 17 * 32): the fused kernel is counted too.
    assert rows["encoder.layers.encoder_layer_0.self_attention"]["flops"] == 2 * 17 * 32 * 128 + 4 * 17 * 17 * 32
    assert rows["encoder.layers.encoder_layer_0.mlp.0"]["flops"] == 2 * 17 * 32 * 128
    assert summarize(_vit(), 32, batch=3)["flops_per_image"] == summary["flops"]


def test_a_model_that_is_not_a_vit_has_no_geometry_and_non_square_inputs_work():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    summary = summarize(model, (16, 24))
    assert summary["geometry"] is None
    assert summary["input_shape"] == [1, 3, 16, 24]
    assert _rows(summary)["0"]["output_shape"] == [1, 4, 16, 24]
    assert summary["flops"] == 2 * 16 * 24 * 4 * 27 + 2 * 4 * 2


def test_format_table_lists_modules_totals_and_geometry():
    summary = summarize(_vit(), 32)
    text = format_table(summary)
    assert "conv_proj (Conv2d)" in text and "[1, 32, 4, 4]" in text
    assert f"Parameters: {summary['params']:,}" in text
    assert f"FLOPs per image: {summary['flops'] / 1e6:.2f}M" in text
    assert "Geometry: 32x32 input, 8x8 patches -> 4x4 grid = 16 patches + 1 prefix token = 17 tokens" in text
    shallow = format_table(summary, max_depth=1)
    assert "encoder (Encoder)" in shallow and "encoder_layer_0" not in shallow
