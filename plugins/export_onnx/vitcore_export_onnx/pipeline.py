"""The ``onnx`` exporter's work: export into a staging folder, verify, add variants, then publish.

Nothing reaches ``exports/`` before the fp32 file has matched PyTorch in onnxruntime; a failure
removes the staging folder and leaves earlier exports as they were.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vitcore.api import ExportContext, VitcoreError, now_iso, sha256, write_json_atomic, write_model_card
from vitcore_export_onnx import __version__, convert, measure, metadata, quantize, static, verify
from vitcore_export_onnx.exporter import OnnxOptions

FP32, INT8, INT8_STATIC, FP16 = "model.onnx", "model.int8.onnx", "model.int8.static.onnx", "model.fp16.onnx"
RECORD = "onnx.json"
#: Every file this exporter may write; those an export does not produce are removed when it publishes.
OWNED = {name + suffix for name in (FP32, INT8, INT8_STATIC, FP16) for suffix in ("", ".data")}


def check_images(ctx: ExportContext, count: int,
                 val: measure.ValidationImages | None) -> tuple[torch.Tensor, list[int] | None, str]:
    """Normalised validation images (with labels when the data set can be re-read) to verify on."""
    if val is not None and val.size:
        array, labels = val.sample(count)
        images, source = torch.from_numpy(array), "validation set"
    elif ctx.example_inputs is not None:
        images, labels, source = ctx.example_inputs[:count], None, "the run's example inputs"
    else:
        raise VitcoreError("onnx: no validation images to verify the export on (the run's data set cannot be "
                           "read); make the data available again and run `vitcore export RUN_DIR --format onnx`")
    if len(images) == 1:  # a batch of one cannot show that the batch dimension works
        images, labels = images.repeat(2, 1, 1, 1), None if labels is None else labels * 2
    return images.float(), labels, source


def export_onnx(ctx: ExportContext, options: OnnxOptions) -> list[Path]:
    """Export, verify and publish; returns every file written (models, record, model card)."""
    val = measure.ValidationImages.of_spec(ctx.spec, ctx.preprocessing, options.agreement_images)
    images, labels, source = check_images(ctx, options.check_images, val)
    with torch.inference_mode():
        reference = ctx.model(images).float().numpy()
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".onnx.", suffix=".tmp", dir=ctx.out_dir))
    try:
        record = _build(ctx, options, images.numpy(), reference, labels, source, staging, val)
        files = _publish(staging, ctx.out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record["files"] = [{"file": p.name, "bytes": p.stat().st_size, "sha256": sha256(p)} for p in files]
    # Kept in the record: the model card, rewritten after any later export, still says what was checked.
    record["card_notes"] = list(card_notes(record))
    write_json_atomic(ctx.out_dir / RECORD, record)
    if "comparison" in record:
        print(measure.fastest_line(record["comparison"]), file=sys.stderr, flush=True)
    card = write_model_card(ctx.run_dir, spec=ctx.spec, classes=list(ctx.classes),
                            preprocessing=ctx.preprocessing.to_dict())
    return [*files, ctx.out_dir / RECORD, card]


def _build(ctx: ExportContext, options: OnnxOptions, images: np.ndarray, reference: np.ndarray,
           labels: list[int] | None, source: str, staging: Path,
           val: measure.ValidationImages | None = None) -> dict[str, Any]:
    import onnx
    import onnxruntime

    raw_dir = staging / "raw"
    raw_dir.mkdir()
    example = torch.from_numpy(images[:2] if options.dynamic_batch else images[:1])
    raw, switched = convert.export_model(ctx.model, example, raw_dir, options)
    facts = metadata.describe(ctx, options.exporter, options.opset)
    fp32 = convert.finalize(raw, staging / FP32, facts)
    shutil.rmtree(raw_dir)
    batch = convert.require_symbolic_batch(fp32) if options.dynamic_batch else convert.batch_dimension(fp32)
    check, fp32_logits = verify.check_against(fp32, images, reference, options.atol, options.dynamic_batch)
    check.update(source=source, accuracy=verify.accuracy(fp32_logits, labels))
    record: dict[str, Any] = {
        "format": "onnx",
        "created": now_iso(),
        "exporter": options.exporter,
        "opset": options.opset,
        "versions": {"vitcore-export-onnx": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
        "input": {"name": convert.INPUT, "shape": [batch, 3, *images.shape[2:]], "dtype": "float32"},
        "output": {"name": convert.OUTPUT, "shape": [batch, reference.shape[1]], "dtype": "float32"},
        "attention": switched,
        "metadata": facts,
        "verification": check,
    }
    step = None if options.dynamic_batch else 1
    if options.quantize_int8:
        record["int8"] = quantize.int8(fp32, staging / INT8, images, fp32_logits, labels, step)
    if options.quantize_static:
        if val is not None and val.size:
            calibration, _ = val.sample(options.calibration_images)
            where = "validation set"
        else:
            calibration, where = images, source
        record["int8_static"] = static.int8_static(fp32, staging / INT8_STATIC, calibration, where,
                                                   options.calibration_method, images, fp32_logits, labels, step)
    if options.fp16:
        record["fp16"] = quantize.fp16(fp32, staging / FP16, images, fp32_logits, step)
    files = {"fp32": fp32}
    for variant, name, wanted in (("int8_dynamic", INT8, options.quantize_int8),
                                  ("int8_static", INT8_STATIC, options.quantize_static),
                                  ("fp16", FP16, options.fp16)):
        if wanted:
            files[variant] = staging / name
    comparison = measure.compare(files, ctx.model, val if val is not None and val.size else None, images, labels,
                                 options.latency_batch_sizes, step, options.latency_seconds)
    record["comparison"] = comparison
    record["fastest"] = {f"batch_{b}": {"variant": v, "file": comparison["variants"][v]["file"]}
                         for b, v in comparison["fastest"].items()}
    return record


def _publish(staging: Path, out_dir: Path) -> list[Path]:
    """Rename the staged files into ``out_dir``; remove this exporter's files from earlier exports that
    this one did not produce (a stale int8 file must not pass as this model's)."""
    staged = sorted(p for p in staging.iterdir() if p.is_file())
    for stale in OWNED - {p.name for p in staged}:
        (out_dir / stale).unlink(missing_ok=True)
    published = []
    for path in staged:
        os.replace(path, out_dir / path.name)
        published.append(out_dir / path.name)
    return published


def card_notes(record: dict[str, Any]) -> Sequence[str]:
    """The export's checks in a sentence each, for the model card."""
    check = record["verification"]
    sizes = " and ".join(str(s) for s in check["batch_sizes"])
    notes = [(f"ONNX ({record['exporter']} exporter, opset {record['opset']}): onnxruntime matches PyTorch on "
              f"{check['images']} images ({check['source']}) at batch sizes {sizes}: max |logit difference| "
              f"{check['max_abs_diff']:.2e} (atol {check['atol']:g}), top-1 agreement {check['top1_agreement']:.0%}.")]
    if "int8" in record:
        q, ms = record["int8"], record["int8"]["latency_ms_per_image"]
        change = q["accuracy"]["change"]
        notes.append(f"int8 ({q['file']}): {q['size_ratio']:.0%} of the fp32 size, {ms['int8']:.3g} ms/image vs "
                     f"{ms['fp32']:.3g} fp32 on this CPU, top-1 agreement with fp32 {q['top1_agreement']:.0%}"
                     + ("" if change is None else f", accuracy change {change:+.3f}")
                     + (f"; attention MatMuls kept in fp32 ({len(q['kept_fp32'])})" if q["kept_fp32"] else "") + ".")
    if "int8_static" in record:
        q = record["int8_static"]
        change = q["accuracy"]["change"]
        notes.append(f"static int8 ({q['file']}, QDQ, calibrated on {q['calibration']['images']} images of the "
                     f"{q['calibration']['source']}): {q['size_ratio']:.0%} of the fp32 size, top-1 agreement with "
                     f"fp32 {q['top1_agreement']:.0%}" + ("" if change is None else f", accuracy change {change:+.3f}")
                     + (f"; attention MatMuls kept in fp32 ({len(q['kept_fp32'])})" if q["kept_fp32"] else "") + ".")
    if "comparison" in record:
        c = record["comparison"]
        rows = []
        for name, v in c["variants"].items():
            times = ", ".join(f"{t['ms_per_batch']:.3g} ms at batch {b}" for b, t in v["latency"].items())
            rows.append(f"{name} {times}, agreement {v['top1_agreement_vs_fp32']:.1%}")
        notes.append(f"Variants on this CPU over {c['images']} images ({c['source']}): " + "; ".join(rows) + ". "
                     + "Fastest: " + ", ".join(f"{v} at batch {b}" for b, v in c["fastest"].items()) + ".")
    if "fp16" in record:
        h = record["fp16"]
        notes.append(f"fp16 ({h['file']}): top-1 agreement with fp32 {h['top1_agreement']:.0%}, "
                     f"max |logit difference| {h['max_abs_diff_vs_fp32']:.2e}.")
    return notes
