"""The plugin as installed: entry-point discovery, a light import, option errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from vitcore_export_onnx.exporter import OnnxOptions

from vitcore.api import SpecError, load_dict, registry
from vitcore.testing import installed_plugin


def test_the_installed_entry_point_registers_the_exporter():
    ours = installed_plugin("vitcore-export-onnx")
    assert ours.status == "ok" and ours.version == "0.1.0" and ours.components == {"exporters": ["onnx"]}
    assert registry("exporters").get("onnx").plugin == "vitcore-export-onnx"
    assert "model_file_predictor" in ours.hooks


def test_importing_the_plugin_loads_neither_torch_onnx_nor_onnxruntime():
    code = ("import sys, vitcore_export_onnx, vitcore_export_onnx.exporter, vitcore_export_onnx.predict; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _spec(tmp_path, **options) -> dict:
    return {"data": {"type": "imagefolder", "root": str(tmp_path)}, "model": {"type": "torchvision_vit"},
            "exporters": [{"type": "onnx", **options}]}


@pytest.mark.parametrize(("options", "message"), [
    ({"opset": 12}, "exporters[0].opset"),
    ({"opset": 21}, "the torchscript exporter writes opset 20 at most"),
    ({"exporter": "dynamo", "opset": 17}, "the dynamo exporter writes opset 18 or newer"),
    ({"exporter": "tflite"}, "exporters[0].exporter"),
    ({"atol": 0}, "exporters[0].atol"),
    ({"check_images": 0}, "exporters[0].check_images"),
    ({"calibration_images": 5000}, "exporters[0].calibration_images"),
    ({"int8": True}, "exporters[0].int8: unknown field"),
])
def test_option_errors_name_the_field(tmp_path, options, message):
    with pytest.raises(SpecError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_dict(_spec(tmp_path, **options))


def test_fp16_without_onnxconverter_common_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxconverter_common" else real_find_spec(name, *a))
    with pytest.raises(SpecError, match="pip install onnxconverter-common"):
        load_dict(_spec(tmp_path, fp16=True))


def test_every_option_is_described():
    assert all(field.description for field in OnnxOptions.model_fields.values())
