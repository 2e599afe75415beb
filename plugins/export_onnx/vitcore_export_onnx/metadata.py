"""The facts a consumer needs, embedded in the ONNX file itself (``metadata_props``).

Keys are ``vitcore.<name>`` and every value is JSON, so the file alone is enough to prepare an
image and name the prediction. Reading needs only onnxruntime (``custom_metadata_map``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from vitcore.api import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import onnx

    from vitcore.api import ExportContext

PREFIX = "vitcore."
#: What ``read`` requires: enough to preprocess an image and label the output.
REQUIRED = ("classes", "image_size", "mean", "std", "interpolation", "crop_pct")


def describe(ctx: "ExportContext", exporter: str, opset: int) -> dict[str, Any]:
    """Classes, preprocessing and provenance of the model being exported."""
    from vitcore import __version__ as vitcore_version
    from vitcore_export_onnx import __version__

    pre = ctx.preprocessing.to_dict()
    return {
        "classes": list(ctx.classes),
        **{key: pre[key] for key in ("image_size", "mean", "std", "interpolation", "crop_pct")},
        "input": "images: float32 NCHW RGB, resized (short side image_size / crop_pct), centre-cropped, "
                 "(pixel / 255 - mean) / std",
        "run_name": ctx.spec.get("name"),
        "run_version": ctx.run_dir.name,
        "vitcore_version": vitcore_version,
        "exporter": f"vitcore-export-onnx {__version__}, torch.onnx {exporter}, opset {opset}",
    }


def embed(model: "onnx.ModelProto", facts: Mapping[str, Any]) -> None:
    """Set ``vitcore.*`` metadata (replacing earlier values of the same keys)."""
    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in [*keep, *((PREFIX + k, json.dumps(v)) for k, v in facts.items())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read(metadata: Mapping[str, str], source: str) -> dict[str, Any]:
    """The ``vitcore.*`` facts from a model's custom metadata; an error if any required one is missing."""
    facts = {key[len(PREFIX):]: json.loads(value) for key, value in metadata.items() if key.startswith(PREFIX)}
    missing = [key for key in REQUIRED if key not in facts]
    if missing:
        raise VitcoreError(f"{source}: no vitcore metadata ({', '.join(PREFIX + k for k in missing)}); "
                           "export it with `vitcore export RUN_DIR --format onnx`")
    return facts
