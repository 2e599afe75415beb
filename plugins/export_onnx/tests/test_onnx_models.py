"""Models of every ViT library: attention made exportable (and restored), and what cannot be exported."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from vitcore_export_onnx.exporter import OnnxExporter, OnnxOptions

from vitcore.api import ExportContext, ModelContext, Preprocessing, VitcoreError

CLASSES = ["blue", "green", "red"]


def _export(model: torch.nn.Module, pre: Preprocessing, images: torch.Tensor, run_dir: Path, **options) -> dict:
    ctx = ExportContext(run_dir=run_dir, model=model.eval(), classes=CLASSES, preprocessing=pre,
                        spec={"name": run_dir.parent.name}, example_inputs=images)
    OnnxExporter(OnnxOptions(**options)).export(ctx)
    return json.loads((ctx.out_dir / "onnx.json").read_text())


def test_timm_attention_is_unfused_for_export_and_restored(tmp_path, real_images):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=1,
                              embed_dim=32, num_heads=2, num_classes=3)
    pre = Preprocessing(32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation="bicubic",
                        crop_pct=0.9)
    record = _export(model, pre, real_images(pre, 4), tmp_path / "runs" / "timm" / "v1",
                     dynamic_batch=False, quantize_int8=False)
    assert record["attention"] == ["blocks.0.attn: fused_attn off"] and model.blocks[0].attn.fused_attn is True
    check = record["verification"]
    assert check["source"] == "the run's example inputs" and check["batch_sizes"] == [1]
    assert check["max_abs_diff"] <= 1e-4 and check["top1_agreement"] == 1.0 and check["accuracy"] is None
    assert record["input"]["shape"] == [1, 3, 32, 32]
    assert record["metadata"]["interpolation"] == "bicubic" and record["metadata"]["crop_pct"] == 0.9


@pytest.mark.skipif(importlib.util.find_spec("vitcore_vit_timm") is None, reason="vitcore-vit-timm not installed")
def test_a_timm_vit_from_the_plugin_exports(tmp_path, real_images):
    from vitcore.api import resolve_component

    entry = {"type": "timm_vit", "name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8, "depth": 1,
             "embed_dim": 32, "num_heads": 2}
    builder = resolve_component(entry, "models", "model").instantiate()
    torch.manual_seed(0)
    model = builder.build(ModelContext(num_classes=3, class_names=CLASSES))
    pre = builder.preprocessing()
    fused = {name: m.fused_attn for name, m in model.named_modules() if hasattr(m, "fused_attn")}
    record = _export(model, pre, real_images(pre, 4), tmp_path / "runs" / "timm" / "v1")
    switched = [line for line in record["attention"] if line.endswith("fused_attn off")]
    assert fused and switched == [f"{name}: fused_attn off" for name, on in fused.items() if on]
    assert {name: m.fused_attn for name, m in model.named_modules() if hasattr(m, "fused_attn")} == fused
    assert record["verification"]["max_abs_diff"] <= 1e-4 and record["verification"]["top1_agreement"] == 1.0
    assert record["int8"]["bytes"] < record["int8"]["fp32_bytes"]


def test_a_hugging_face_vit_exports_with_eager_attention_and_keeps_sdpa(tmp_path, real_images):
    pytest.importorskip("vitcore_vit_hf")
    from vitcore_vit_hf.models import HFViT, HFViTOptions

    builder = HFViT(HFViTOptions(image_size=32, patch_size=8, num_hidden_layers=1, hidden_size=32,
                                 num_attention_heads=2, intermediate_size=64))
    torch.manual_seed(0)
    model = builder.build(ModelContext(num_classes=3, class_names=CLASSES))
    pre = builder.preprocessing()
    record = _export(model, pre, real_images(pre, 4), tmp_path / "runs" / "hf" / "v1")
    assert record["attention"] == ["hf_model: sdpa -> eager attention"]
    assert model.hf_model.config._attn_implementation == "sdpa"
    assert record["verification"]["max_abs_diff"] <= 1e-4 and record["verification"]["top1_agreement"] == 1.0
    assert record["int8"]["bytes"] < record["int8"]["fp32_bytes"]


def test_fused_attention_below_opset_14_is_refused_with_the_fix(export_context):
    with pytest.raises(VitcoreError, match=r"MultiheadAttention.*scaled_dot_product_attention.*opset to 14"):
        OnnxExporter(OnnxOptions(opset=13)).export(export_context())


class _CumulativeMax(torch.nn.Module):
    """A model with an operator no ONNX exporter translates (aten::cummax)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cummax(images, dim=-1).values.mean(dim=(2, 3)))


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_an_operator_the_exporter_lacks_is_named_with_what_to_do(tmp_path, real_images, exporter):
    pre = Preprocessing(32)
    run_dir = tmp_path / "runs" / "odd" / "v1"
    with pytest.raises(VitcoreError, match=r"aten[:.]+cummax") as error:
        _export(_CumulativeMax(), pre, real_images(pre, 2), run_dir, exporter=exporter)
    assert f"the {exporter} exporter (opset 18) cannot export this model" in str(error.value)
    assert "Try exporter:" in str(error.value)
    assert not (run_dir / "exports").exists() or not any((run_dir / "exports").iterdir())


def test_fp16_writes_a_checked_variant(export_context, monkeypatch):
    """With onnxconverter-common present (a stand-in here: it is optional) fp16 is written and recorded."""
    import importlib.machinery
    import sys
    import types

    fake = types.ModuleType("onnxconverter_common")
    fake.__spec__ = importlib.machinery.ModuleSpec("onnxconverter_common", None)
    fake.float16 = types.SimpleNamespace(convert_float_to_float16=lambda model, keep_io_types: model)
    monkeypatch.setitem(sys.modules, "onnxconverter_common", fake)
    ctx = export_context()
    OnnxExporter(OnnxOptions(fp16=True, quantize_int8=False, quantize_static=False)).export(ctx)
    record = json.loads((ctx.out_dir / "onnx.json").read_text())
    assert record["fp16"]["file"] == "model.fp16.onnx" and record["fp16"]["top1_agreement"] == 1.0
    assert {entry["file"] for entry in record["files"]} == {"model.onnx", "model.fp16.onnx"}
