"""The onnx exporter on a real run: the record's figures, the files, int8, re-export, failures."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from vitcore_export_onnx import quantize, verify
from vitcore_export_onnx.exporter import OnnxExporter, OnnxOptions
from vitcore_export_onnx.quantize import attention_matmuls

from vitcore.api import VitcoreError, load_run_model, sha256
from vitcore.testing import run_cli


def _record(run_dir) -> dict:
    return json.loads((run_dir / "exports" / "onnx.json").read_text())


def test_the_run_ends_with_a_verified_export_and_its_record(onnx_run):
    exports = onnx_run / "exports"
    record = _record(onnx_run)
    check = record["verification"]
    assert record["exporter"] == "torchscript" and record["opset"] == 18
    assert check["source"] == "validation set" and check["images"] >= 5
    assert check["batch_sizes"] == [1, check["images"]] and set(check["by_batch"]) == {"1", str(check["images"])}
    assert check["max_abs_diff"] <= 1e-4 and check["top1_agreement"] == 1.0 and check["accuracy"] is not None
    assert record["attention"] == ["torch.nn.MultiheadAttention: fast path off"]
    files = {entry["file"]: entry for entry in record["files"]}
    assert set(files) == {"model.onnx", "model.int8.onnx", "model.int8.static.onnx"}
    for name, entry in files.items():
        assert entry["bytes"] == (exports / name).stat().st_size > 10_000
        assert entry["sha256"] == sha256(exports / name)
    summary = json.loads((onnx_run / "summary.json").read_text())
    written = {str(exports / name) for name in ("model.onnx", "model.int8.onnx", "model.int8.static.onnx",
                                                 "onnx.json", "MODEL_CARD.md")}
    assert written <= set(summary["exports"])
    assert not [p.name for p in exports.iterdir() if p.name.startswith(".")], "a staging folder was left behind"


def test_the_file_has_a_symbolic_batch_its_metadata_and_matches_pytorch_at_batch_1_and_5(onnx_run, real_images):
    path = onnx_run / "exports" / "model.onnx"
    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 32, 32]
    facts = {p.key: json.loads(p.value) for p in model.metadata_props if p.key.startswith("vitcore.")}
    assert facts["vitcore.classes"] == ["blue", "green", "red"]
    assert (facts["vitcore.image_size"], facts["vitcore.mean"], facts["vitcore.std"]) == (32, [0.5] * 3, [0.5] * 3)
    assert (facts["vitcore.interpolation"], facts["vitcore.crop_pct"]) == ("bilinear", 1.0)
    assert (facts["vitcore.run_name"], facts["vitcore.run_version"]) == ("tiny", "v1")

    loaded = load_run_model(onnx_run)
    images = real_images(loaded.preprocessing, 5)
    with torch.inference_mode():
        reference = loaded.model(images).numpy()
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for count in (1, 5):
        logits = sess.run(None, {"images": images[:count].numpy()})[0]
        assert logits.shape == (count, 3)
        np.testing.assert_allclose(logits, reference[:count], atol=1e-4, rtol=0)
        assert (logits.argmax(1) == reference[:count].argmax(1)).all()


def test_the_int8_file_and_its_measured_record(onnx_run):
    exports = onnx_run / "exports"
    record = _record(onnx_run)
    q = record["int8"]
    assert q["file"] == "model.int8.onnx" and q["bytes"] == (exports / "model.int8.onnx").stat().st_size
    assert q["fp32_bytes"] == (exports / "model.onnx").stat().st_size and q["bytes"] < q["fp32_bytes"]
    assert q["size_ratio"] == pytest.approx(q["bytes"] / q["fp32_bytes"], abs=1e-4)
    assert q["top1_agreement"] >= quantize.MIN_AGREEMENT and q["kept_fp32"] == []
    assert [a["attention_matmuls"] for a in q["attempts"]] == ["int8"]
    assert q["latency_ms_per_image"]["fp32"] > 0 and q["latency_ms_per_image"]["int8"] > 0 and q["speedup"] > 0
    assert q["accuracy"]["fp32"] == record["verification"]["accuracy"]
    assert q["accuracy"]["change"] == pytest.approx(q["accuracy"]["int8"] - q["accuracy"]["fp32"])
    ops = {node.op_type for node in onnx.load(str(exports / "model.int8.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops


def test_the_model_card_describes_data_metrics_checks_and_hashes(onnx_run):
    card = (onnx_run / "exports" / "MODEL_CARD.md").read_text()
    record = _record(onnx_run)
    assert card.startswith("# Model card: tiny/v1")
    assert "Classes (3): blue, green, red" in card and "`imagefolder`" in card and "best val_acc1" in card
    assert "Resize the short side to 32 px (bilinear" in card and "onnxruntime matches PyTorch" in card
    for entry in record["files"]:
        assert f"| {entry['file']} | {entry['bytes']} | `{entry['sha256']}` |" in card
    assert "model.safetensors" in card  # every recorded export, not only this exporter's


def test_vitcore_export_again_with_dynamo_replaces_the_files_it_owns(run_copy):
    exports = run_copy / "exports"
    result = run_cli("export", str(run_copy), "--format", "onnx", "--option", "exporter=dynamo",
                     "--option", "quantize_int8=false", "--option", "quantize_static=false")
    assert result.returncode == 0, result.stderr
    assert "onnx: fastest on this machine: batch 1: fp32 (model.onnx)" in result.stderr
    assert result.stdout.split() == [str(exports / name) for name in ("model.onnx", "onnx.json", "MODEL_CARD.md")]
    record = _record(run_copy)
    assert record["exporter"] == "dynamo" and "int8" not in record and "int8_static" not in record
    assert record["verification"]["max_abs_diff"] <= 1e-4 and record["verification"]["top1_agreement"] == 1.0
    assert not (exports / "model.int8.onnx").exists(), "the earlier int8 file no longer matches the model"
    assert not (exports / "model.int8.static.onnx").exists()
    assert onnx.load(str(exports / "model.onnx")).graph.input[0].type.tensor_type.shape.dim[0].dim_param
    verified = run_cli("runs", "verify", str(run_copy))
    assert verified.returncode == 0, verified.stderr
    assert "ok       exports/model.onnx" in verified.stdout


def test_a_failed_check_raises_and_publishes_nothing(export_context, monkeypatch):
    ctx = export_context()
    ctx.out_dir.mkdir()
    earlier = ctx.out_dir / "model.onnx"
    earlier.write_bytes(b"an earlier export")
    real_run = verify.run
    monkeypatch.setattr(verify, "run", lambda sess, images, batch=None: real_run(sess, images, batch) + 0.01)
    with pytest.raises(VitcoreError, match="does not match PyTorch") as error:
        OnnxExporter(OnnxOptions()).export(ctx)
    assert "logit = 0.01" in str(error.value) and "was not kept" in str(error.value)
    assert [p.name for p in ctx.out_dir.iterdir()] == ["model.onnx"]
    assert earlier.read_bytes() == b"an earlier export"


def test_int8_keeps_attention_in_fp32_when_agreement_drops(export_context, monkeypatch):
    monkeypatch.setattr(quantize, "MIN_AGREEMENT", 1.01)  # no attempt is good enough: both are made
    ctx = export_context()
    with pytest.warns(UserWarning, match="agrees with the fp32 model on only"):
        OnnxExporter(OnnxOptions()).export(ctx)
    q = _record(ctx.run_dir)["int8"]
    assert [a["attention_matmuls"] for a in q["attempts"]] == ["int8", "fp32"]
    kept = attention_matmuls(ctx.out_dir / "model.onnx")
    assert q["kept_fp32"] == kept and len(kept) == 2  # Q·Kᵀ and attention·V of the one block
    graph = onnx.load(str(ctx.out_dir / "model.int8.onnx")).graph
    assert set(kept) <= {node.name for node in graph.node if node.op_type == "MatMul"}
    assert "attention MatMuls kept in fp32 (2)" in (ctx.out_dir / "MODEL_CARD.md").read_text()


def test_static_int8_is_calibrated_qdq_and_recorded(onnx_run):
    exports = onnx_run / "exports"
    record = _record(onnx_run)
    q = record["int8_static"]
    assert q["file"] == "model.int8.static.onnx" and q["bytes"] == (exports / q["file"]).stat().st_size
    assert q["bytes"] < q["fp32_bytes"] and q["calibration"] == {"images": 6, "source": "validation set",
                                                                  "method": "minmax"}
    assert q["top1_agreement"] >= quantize.MIN_AGREEMENT and q["kept_fp32"] == []
    ops = [node.op_type for node in onnx.load(str(exports / q["file"])).graph.node]
    # QDQ: a QuantizeLinear/DequantizeLinear pair in front of every MatMul input, no dynamic quantisation
    assert ops.count("QuantizeLinear") >= 4 and ops.count("DequantizeLinear") >= ops.count("QuantizeLinear")
    assert "DynamicQuantizeLinear" not in ops and "MatMulInteger" not in ops
    assert "static int8 (model.int8.static.onnx, QDQ, calibrated on 6 images" in (exports / "MODEL_CARD.md").read_text()


def test_every_variant_is_compared_on_the_whole_validation_split(export_context, onnx_run):
    """Agreement and accuracy of each file over all validation images (not the check images),
    equal to a direct onnxruntime computation; latency at batch 1 and 32; the fastest named."""
    from vitcore.api import eval_transform, load_splits, normalize

    ctx = export_context()
    OnnxExporter(OnnxOptions(check_images=2, latency_seconds=0.01)).export(ctx)
    record = _record(ctx.run_dir)
    comparison = record["comparison"]
    splits = load_splits(ctx.spec)
    pre = ctx.preprocessing
    images = normalize(torch.stack([eval_transform(pre)(image) for image, _ in splits.val]), pre).numpy()
    labels = np.array([label for _, label in splits.val])
    assert record["verification"]["images"] == 2 and comparison["images"] == len(labels) == 6
    assert comparison["source"] == "validation split" and list(comparison["variants"]) == [
        "fp32", "int8_dynamic", "int8_static"]
    top = {name: onnxruntime.InferenceSession(str(ctx.out_dir / v["file"])).run(None, {"images": images})[0].argmax(1)
           for name, v in comparison["variants"].items()}
    for name, v in comparison["variants"].items():
        assert v["top1_agreement_vs_fp32"] == pytest.approx((top[name] == top["fp32"]).mean())
        assert v["accuracy"] == pytest.approx((top[name] == labels).mean())
        assert v["bytes"] == (ctx.out_dir / v["file"]).stat().st_size
        assert set(v["latency"]) == {"1", "32"} and all(t["ms_per_batch"] > 0 for t in v["latency"].values())
        assert v["latency"]["32"]["ms_per_image"] == pytest.approx(v["latency"]["32"]["ms_per_batch"] / 32, rel=1e-3)
    assert comparison["variants"]["fp32"]["top1_agreement_vs_pytorch"] == 1.0
    for batch, fastest in comparison["fastest"].items():
        times = {name: v["latency"][batch]["ms_per_batch"] for name, v in comparison["variants"].items()}
        assert times[fastest] == min(times.values())
        assert record["fastest"][f"batch_{batch}"] == {"variant": fastest,
                                                       "file": comparison["variants"][fastest]["file"]}


def test_a_fixed_batch_export_times_and_calibrates_at_batch_1(export_context):
    ctx = export_context()
    OnnxExporter(OnnxOptions(dynamic_batch=False, quantize_int8=False, latency_seconds=0.01)).export(ctx)
    record = _record(ctx.run_dir)
    assert record["int8_static"]["top1_agreement"] >= quantize.MIN_AGREEMENT
    assert record["comparison"]["batch_sizes"] == [1] and list(record["fastest"]) == ["batch_1"]


def test_static_int8_calibrates_on_at_most_the_images_asked_and_is_compared_on_the_whole_split(export_context):
    """The cap that bounds export time: 3 of the 6 validation images calibrate the scales, yet the
    agreement and accuracy figures still cover all 6, and the file runs in onnxruntime."""
    ctx = export_context()
    OnnxExporter(OnnxOptions(calibration_images=3, quantize_int8=False, latency_seconds=0.01)).export(ctx)
    record = _record(ctx.run_dir)
    assert record["int8_static"]["calibration"] == {"images": 3, "source": "validation set", "method": "minmax"}
    assert OnnxOptions().calibration_images == 64
    static = record["comparison"]["variants"]["int8_static"]
    assert record["comparison"]["images"] == 6
    assert 0.0 <= static["accuracy"] <= 1.0 and static["top1_agreement_vs_fp32"] >= quantize.MIN_AGREEMENT
    assert static["bytes"] < record["comparison"]["variants"]["fp32"]["bytes"]
    sess = onnxruntime.InferenceSession(str(ctx.out_dir / "model.int8.static.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"images": np.zeros((2, 3, 32, 32), np.float32)})[0].shape == (2, 3)
