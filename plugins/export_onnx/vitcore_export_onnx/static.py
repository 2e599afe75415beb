"""Static int8: weights and activations quantised ahead of time, with scales calibrated on
validation images (onnxruntime ``quantize_static``, QDQ format).

Unlike dynamic int8, no activation range is computed per call, so the int8 matrix products
run back to back (onnxruntime fuses each QuantizeLinear/DequantizeLinear pair around a MatMul
into an integer kernel). Activations are uint8 and weights int8 per output channel: the U8S8
pair is what x86 CPUs' VNNI instructions multiply fastest (S8S8 measured up to 3x slower on the
AVX-512 machine these figures come from). LayerNorm, Softmax and GELU stay in float.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from vitcore.api import VitcoreError
from vitcore_export_onnx.quantize import MIN_AGREEMENT, _quiet_root_logger, _size, attention_matmuls
from vitcore_export_onnx.verify import accuracy, agreement, run, session

#: Operators whose inputs are quantised: every matrix product and the patch embedding.
QUANTIZED_OPS = ["MatMul", "Gemm", "Conv"]
#: Calibration images per call of the model while ranges are collected.
CALIBRATION_BATCH = 16


class _Reader:
    """onnxruntime's CalibrationDataReader over a float array of normalised images."""

    def __init__(self, name: str, images: np.ndarray, batch: int) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{name: images[i:i + batch]} for i in range(0, len(images), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def __iter__(self):  # CalibrationDataReader's interface
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = self.get_next()
        if batch is None:
            raise StopIteration
        return batch


def _prepared(fp32: Path, folder: Path) -> tuple[Path, str]:
    """The model after onnxruntime's quantisation pre-processing (shape inference, graph
    optimisation), or the fp32 file as it is when that step cannot handle it."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "static.pre.onnx"
    try:
        with _quiet_root_logger(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Symbolic shape inference fails on the Reshape of exported attention; ONNX's own runs.
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        return prepared, "onnxruntime quant_pre_process (ONNX shape inference, graph optimisation)"
    except Exception as exc:  # noqa: BLE001 - the step is an optimisation; quantise the file as it is
        prepared.unlink(missing_ok=True)
        return fp32, f"none (quant_pre_process failed: {type(exc).__name__})"


def _quantize(source: Path, dest: Path, calibration: np.ndarray, method: str, exclude: Sequence[str],
              external: bool, batch: int | None) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
    name = session(source).get_inputs()[0].name
    try:
        with _quiet_root_logger(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = _Reader(name, calibration, batch or CALIBRATION_BATCH)
            quantize_static(str(source), str(dest), reader, quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=QUANTIZED_OPS, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=list(exclude), calibrate_method=calibrate,
                            use_external_data_format=external)
    except Exception as exc:  # onnxruntime's quantiser raises assorted types on graphs it cannot handle
        raise VitcoreError(f"onnx: static int8 quantisation failed ({type(exc).__name__}: {exc}); set "
                           "quantize_static: false to export without it") from exc


def int8_static(fp32: Path, dest: Path, calibration: np.ndarray, calibration_source: str, method: str,
                images: np.ndarray, fp32_logits: np.ndarray, labels: Sequence[int] | None,
                batch: int | None) -> dict[str, Any]:
    """Write ``dest`` as static int8 (QDQ) calibrated on ``calibration``; if top-1 agreement with
    fp32 on ``images`` drops below ``MIN_AGREEMENT``, retry with the attention MatMuls
    (activation x activation) in float. Returns the record of the file kept."""
    work = dest.parent / ".static"
    work.mkdir(exist_ok=True)
    try:
        source, prepared = _prepared(fp32, work)
        external = (fp32.parent / f"{fp32.name}.data").is_file()
        attention = attention_matmuls(source)
        attempts = []
        for kept in ([], attention):
            _quantize(source, dest, calibration, method, kept, external, batch)
            logits = run(session(dest), images, batch)
            attempts.append({"attention_matmuls": "fp32" if kept else "int8",
                             "top1_agreement": agreement(logits, fp32_logits)})
            if attempts[-1]["top1_agreement"] >= MIN_AGREEMENT or not attention:
                break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    acc32, acc8 = accuracy(fp32_logits, labels), accuracy(logits, labels)
    record: dict[str, Any] = {
        "file": dest.name,
        "method": "onnxruntime quantize_static, QDQ: uint8 activations and int8 per-channel weights with scales "
                  f"calibrated ahead of time ({method}); {', '.join(QUANTIZED_OPS)} quantised",
        "calibration": {"images": len(calibration), "source": calibration_source, "method": method},
        "pre_processing": prepared,
        "bytes": _size(dest),
        "fp32_bytes": _size(fp32),
        "size_ratio": round(_size(dest) / _size(fp32), 4),
        "top1_agreement": attempts[-1]["top1_agreement"],
        "max_abs_diff_vs_fp32": float(np.abs(logits - fp32_logits).max()),
        "accuracy": {"fp32": acc32, "int8": acc8, "change": None if acc32 is None else round(acc8 - acc32, 6)},
        "kept_fp32": kept,
        "attempts": attempts,
        "min_agreement": MIN_AGREEMENT,
    }
    if record["top1_agreement"] < MIN_AGREEMENT:
        warnings.warn(f"onnx: {dest.name} agrees with the fp32 model on only {record['top1_agreement']:.1%} of "
                      f"{len(images)} validation images, even with attention in fp32; prefer another variant",
                      stacklevel=2)
    return record
