"""Running an ONNX file in onnxruntime and holding it against reference logits (numpy only)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from vitcore.api import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import onnxruntime


def session(path: Path) -> "onnxruntime.InferenceSession":
    """A CPU session: the checks and timings describe the machine-independent CPU result."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(sess: "onnxruntime.InferenceSession", images: "np.ndarray", batch: int | None = None) -> "np.ndarray":
    """Logits for ``images``, in chunks of ``batch`` (None: one call with all of them)."""
    import numpy as np

    name = sess.get_inputs()[0].name
    step = batch or len(images)
    return np.concatenate([sess.run(None, {name: images[i:i + step]})[0] for i in range(0, len(images), step)])


def agreement(logits: "np.ndarray", reference: "np.ndarray") -> float:
    """Fraction of images whose top-1 class is the same."""
    return float((logits.argmax(1) == reference.argmax(1)).mean())


def accuracy(logits: "np.ndarray", labels: Sequence[int] | None) -> float | None:
    if labels is None:
        return None
    import numpy as np

    return float((logits.argmax(1) == np.asarray(labels)).mean())


def check_against(path: Path, images: "np.ndarray", reference: "np.ndarray", atol: float,
                  dynamic_batch: bool) -> tuple[dict[str, Any], "np.ndarray"]:
    """Compare onnxruntime with the reference at batch 1 and (dynamic batch) all images at once.

    Returns the figures and the file's logits. Raises VitcoreError unless every logit is within
    ``atol`` and every top-1 class is identical.
    """
    import numpy as np

    sess = session(path)
    sizes = [1, len(images)] if dynamic_batch else [1]
    by_batch = {}
    for size in sizes:
        logits = run(sess, images, size)
        by_batch[str(size)] = {"max_abs_diff": float(np.abs(logits - reference).max()),
                               "top1_agreement": agreement(logits, reference)}
    worst_diff = max(b["max_abs_diff"] for b in by_batch.values())
    worst_agreement = min(b["top1_agreement"] for b in by_batch.values())
    result = {"images": len(images), "batch_sizes": sizes, "atol": atol, "max_abs_diff": worst_diff,
              "top1_agreement": worst_agreement, "by_batch": by_batch}
    if worst_diff > atol or worst_agreement < 1.0:
        raise VitcoreError(
            f"onnx: the export does not match PyTorch on {len(images)} validation images "
            f"(max |onnxruntime - PyTorch| logit = {worst_diff:.3g}, atol {atol:g}; top-1 agreement "
            f"{worst_agreement:.3f}; by batch size {by_batch}), so it was not kept. Try the other exporter or "
            "opset; raise atol only if such differences are acceptable for this model"
        )
    return result, logits


def latency_ms(path: Path, images: "np.ndarray", batch: int | None = None, repeats: int = 5) -> float:
    """Median milliseconds per image over ``repeats`` runs over ``images``, after one warm-up run."""
    sess = session(path)
    run(sess, images, batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(sess, images, batch)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) / len(images) * 1000, 4)
