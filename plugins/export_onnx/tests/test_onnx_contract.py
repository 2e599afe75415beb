"""The onnx exporter honours vitcore's exporter contract (vitcore.testing kit)."""

from __future__ import annotations

import json

from vitcore.testing import check_exporter


def test_onnx_exporter_passes_the_exporter_contract(tmp_path):
    from vitcore_export_onnx.exporter import OnnxExporter

    paths = check_exporter(OnnxExporter, {"quantize_int8": False}, tmp_path)
    names = {p.name for p in paths}
    assert {"model.onnx", "onnx.json"} <= names
    verification = json.loads(next(p for p in paths if p.name == "onnx.json").read_text())["verification"]
    assert verification["max_abs_diff"] <= 1e-4 and verification["top1_agreement"] == 1.0
