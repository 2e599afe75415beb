"""``vitcore predict model.onnx IMAGE...``: onnxruntime, PIL and numpy; torch is never imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitcore.api import VitcoreError
from vitcore_export_onnx import metadata
from vitcore_export_onnx.preprocess import prepare

#: Images per onnxruntime call when the batch dimension is symbolic.
CHUNK = 32


class OnnxPredictor:
    """``predict(images, top_k)`` for an ONNX file written by the ``onnx`` exporter."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, images: list[Path], top_k: int) -> list[dict[str, Any]]:
        import numpy as np
        import onnxruntime

        try:
            sess = onnxruntime.InferenceSession(str(self.path), providers=onnxruntime.get_available_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise VitcoreError(f"{self.path}: onnxruntime cannot load this file ({exc})") from None
        facts = metadata.read(sess.get_modelmeta().custom_metadata_map, str(self.path))
        classes = facts["classes"]
        model_input = sess.get_inputs()[0]
        fixed = model_input.shape[0] if isinstance(model_input.shape[0], int) else None
        step = fixed or CHUNK
        logits = []
        for start in range(0, len(images), step):
            chunk = np.stack([prepare(path, facts) for path in images[start:start + step]])
            count = len(chunk)
            if fixed and count < fixed:  # a fixed batch dimension takes exactly that many images
                chunk = np.concatenate([chunk, np.zeros((fixed - count, *chunk.shape[1:]), chunk.dtype)])
            logits.append(sess.run(None, {model_input.name: chunk})[0][:count])
        scores = np.concatenate(logits).astype(np.float64)
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        k = min(top_k, len(classes))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [
            {"image": str(path), "top": [{"label": classes[i], "probability": round(float(p[i]), 6)} for i in idx]}
            for path, p, idx in zip(images, probs, order)
        ]
