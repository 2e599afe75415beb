"""vitcore plugin: the ``onnx`` exporter and ``vitcore predict model.onnx`` without torch.

Importing this package loads neither torch, onnx nor onnxruntime: ``vitcore plugins list`` and
``vitcore --help`` import every plugin, and ``vitcore predict model.onnx`` must run without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import vitcore
from vitcore.api import Register

__version__ = "0.1.0"

#: The vitcore plugin API this plugin is written against (see docs/PLUGINS.md).
VITCORE_PLUGIN_API = ">=1.0,<2"


@vitcore.hookimpl
def register_exporters(register: Register) -> None:
    from vitcore_export_onnx.exporter import OnnxExporter

    register(OnnxExporter)


@vitcore.hookimpl
def model_file_predictor(path: object) -> Callable | None:
    if Path(str(path)).suffix.lower() != ".onnx":
        return None
    from vitcore_export_onnx.predict import OnnxPredictor

    return OnnxPredictor(Path(str(path)))
