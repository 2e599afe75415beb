"""Smaller variants of a verified fp32 ONNX file: dynamic int8 weights, optionally fp16.

Each is measured against the fp32 file on the same validation images (size, CPU latency, top-1
agreement, accuracy) and the figures go into the export record.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from vitcore.api import VitcoreError
from vitcore_export_onnx.verify import accuracy, agreement, latency_ms, run, session

#: Below this top-1 agreement with fp32, int8 is retried with the attention MatMuls left in fp32.
MIN_AGREEMENT = 0.98


def attention_matmuls(path: Path) -> list[str]:
    """MatMul nodes multiplying two activations (Q·Kᵀ and attention·V): no weight on either side."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {t.name for t in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and not any(name in constants for name in node.input)]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """quantize_dynamic logs a pre-processing hint through ``logging.warning``, which would configure
    the root logger of the whole process; a temporary null handler prevents that."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _quantize(source: Path, dest: Path, exclude: Sequence[str], external: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with _quiet_root_logger():
            # MatMulConstBOnly=False: the attention MatMuls are quantised too unless excluded by name.
            quantize_dynamic(str(source), str(dest), weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude),
                             use_external_data_format=external, extra_options={"MatMulConstBOnly": False})
    except Exception as exc:  # onnxruntime's quantiser raises assorted types on graphs it cannot handle
        raise VitcoreError(f"onnx: int8 quantisation failed ({type(exc).__name__}: {exc}); set quantize_int8: false "
                           "to export the verified fp32 model alone") from exc


def int8(fp32: Path, dest: Path, images: np.ndarray, fp32_logits: np.ndarray, labels: Sequence[int] | None,
         batch: int | None) -> dict[str, Any]:
    """Write ``dest`` as dynamic int8; if top-1 agreement with fp32 drops below ``MIN_AGREEMENT``,
    retry keeping the attention MatMuls in fp32. Returns the record of the file kept."""
    external = (fp32.parent / f"{fp32.name}.data").is_file()
    attention = attention_matmuls(fp32)
    attempts = []
    for kept in ([], attention):
        _quantize(fp32, dest, kept, external)
        logits = run(session(dest), images, batch)
        attempts.append({"attention_matmuls": "fp32" if kept else "int8",
                         "top1_agreement": agreement(logits, fp32_logits)})
        if attempts[-1]["top1_agreement"] >= MIN_AGREEMENT or not attention:
            break
    ms32, ms8 = latency_ms(fp32, images, batch), latency_ms(dest, images, batch)
    acc32, acc8 = accuracy(fp32_logits, labels), accuracy(logits, labels)
    record: dict[str, Any] = {
        "file": dest.name,
        "method": "onnxruntime quantize_dynamic: int8 weights, uint8 activations quantised per call",
        "bytes": _size(dest),
        "fp32_bytes": _size(fp32),
        "size_ratio": round(_size(dest) / _size(fp32), 4),
        "latency_ms_per_image": {"fp32": ms32, "int8": ms8, "images_per_run": len(images)},
        "speedup": round(ms32 / ms8, 3) if ms8 else None,
        "top1_agreement": attempts[-1]["top1_agreement"],
        "max_abs_diff_vs_fp32": float(np.abs(logits - fp32_logits).max()),
        "accuracy": {"fp32": acc32, "int8": acc8, "change": None if acc32 is None else round(acc8 - acc32, 6)},
        "kept_fp32": kept,
        "attempts": attempts,
        "min_agreement": MIN_AGREEMENT,
    }
    if record["top1_agreement"] < MIN_AGREEMENT:
        warnings.warn(f"onnx: {dest.name} agrees with the fp32 model on only {record['top1_agreement']:.1%} of "
                      f"{len(images)} validation images, even with attention in fp32; prefer the fp32 model",
                      stacklevel=2)
    return record


def fp16(fp32: Path, dest: Path, images: np.ndarray, fp32_logits: np.ndarray, batch: int | None) -> dict[str, Any]:
    """Write ``dest`` with fp16 weights and arithmetic (float32 input and output kept)."""
    import onnx
    from onnxconverter_common import float16

    model = float16.convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    onnx.save(model, str(dest))
    logits = run(session(dest), images, batch)
    record = {"file": dest.name, "bytes": _size(dest), "top1_agreement": agreement(logits, fp32_logits),
              "max_abs_diff_vs_fp32": float(np.abs(logits - fp32_logits).max())}
    if record["top1_agreement"] < MIN_AGREEMENT:
        warnings.warn(f"onnx: {dest.name} agrees with the fp32 model on only {record['top1_agreement']:.1%} of "
                      f"{len(images)} validation images; prefer the fp32 model", stacklevel=2)
    return record


def _size(path: Path) -> int:
    """Bytes of an ONNX file and its external data file, if any."""
    data = path.parent / f"{path.name}.data"
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)
