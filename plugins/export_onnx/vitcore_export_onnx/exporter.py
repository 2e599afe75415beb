"""The ``onnx`` exporter component: its options and validation (cheap to import; the work is in pipeline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from vitcore.api import ExportContext, Exporter, Options

#: The torchscript exporter stops at opset 20; onnxruntime runs opsets up to 23.
TORCHSCRIPT_MAX_OPSET = 20
#: The dynamo exporter translates to opset 18 and newer.
DYNAMO_MIN_OPSET = 18


class OnnxOptions(Options):
    opset: int = Field(
        18, ge=13, le=23,
        description="ONNX opset: 13-20 with torchscript, 18-23 with dynamo. torchvision's fused "
                    "attention (MultiheadAttention) needs 14 or newer.",
    )
    exporter: Literal["dynamo", "torchscript"] = Field(
        "torchscript",
        description="torch.onnx exporter: torchscript (tracing; fast and mature) or dynamo (torch.export). "
                    "Either way the file is verified in onnxruntime before it is kept.",
    )
    dynamic_batch: bool = Field(True, description="A symbolic batch dimension; False fixes the batch at 1.")
    quantize_int8: bool = Field(
        True, description="Also write model.int8.onnx (dynamic int8 weights) and record its size, speed and "
                          "top-1 agreement with the fp32 model.",
    )
    quantize_static: bool = Field(
        True, description="Also write model.int8.static.onnx: static int8 (onnxruntime quantize_static, QDQ), "
                          "activation scales calibrated on validation images.",
    )
    calibration_images: int = Field(
        64, ge=1, le=1024,
        description="Validation images (spread over the split) the static int8 scales are calibrated on; capped "
                    "so the export stays bounded (calibration runs the fp32 model on each, keeping every "
                    "activation's range).",
    )
    calibration_method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="How static int8 turns the calibration activations into ranges (onnxruntime's "
                              "CalibrationMethod); entropy and percentile keep histograms, slower.",
    )
    agreement_images: int | None = Field(
        None, ge=1, description="Validation images every variant's size, latency, top-1 agreement with fp32 and "
                                "accuracy are measured on; null: the whole validation split.",
    )
    latency_batch_sizes: list[int] = Field(
        [1, 32], min_length=1, description="Batch sizes each variant's latency is timed at (onnxruntime, CPU).",
    )
    latency_seconds: float = Field(
        0.25, gt=0, le=60, description="Seconds each variant is timed per batch size in each of 3 interleaved "
                                       "rounds (at least 3 calls); the figure is the lowest round's median.",
    )
    fp16: bool = Field(False, description="Also write model.fp16.onnx (needs onnxconverter-common).")
    atol: float = Field(1e-4, gt=0, description="Largest allowed |onnxruntime - PyTorch| logit difference.")
    check_images: int = Field(
        16, ge=1, le=1024, description="Validation images the export is checked on (fewer if the set is smaller).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "OnnxOptions":
        if self.exporter == "torchscript" and self.opset > TORCHSCRIPT_MAX_OPSET:
            raise ValueError(f"opset: the torchscript exporter writes opset {TORCHSCRIPT_MAX_OPSET} at most, "
                             f"got {self.opset}; use exporter: dynamo for newer opsets")
        if self.exporter == "dynamo" and self.opset < DYNAMO_MIN_OPSET:
            raise ValueError(f"opset: the dynamo exporter writes opset {DYNAMO_MIN_OPSET} or newer, got "
                             f"{self.opset}; use exporter: torchscript for older opsets")
        if any(size < 1 for size in self.latency_batch_sizes):
            raise ValueError(f"latency_batch_sizes: batch sizes are 1 or more, got {self.latency_batch_sizes}")
        # Checked here, not after training: a run should not train for hours and then fail to export.
        if self.fp16 and importlib.util.find_spec("onnxconverter_common") is None:
            raise ValueError("fp16: needs the onnxconverter-common package; install it with "
                             "`pip install onnxconverter-common` (or vitcore-export-onnx[fp16]), or set fp16: false")
        return self


class OnnxExporter(Exporter):
    """exports/model.onnx (+ int8 variants), checked in onnxruntime against PyTorch on validation images."""

    name = "onnx"
    Options = OnnxOptions
    options: OnnxOptions

    def export(self, ctx: ExportContext) -> list[Path]:
        from vitcore_export_onnx.pipeline import export_onnx

        return export_onnx(ctx, self.options)
