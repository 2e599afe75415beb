"""Every ONNX variant side by side: size, latency at the batch sizes asked, and top-1 agreement
with the fp32 file (and accuracy) over the whole validation split.

The split is streamed in chunks (never held in memory at once). Latency is measured with the
variants interleaved, round after round, and each figure is the lowest of the rounds' medians:
on a machine shared with other work that is the figure least inflated by someone else's load,
and interleaving keeps a drift in the machine's speed from favouring one variant.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from vitcore_export_onnx.quantize import _size
from vitcore_export_onnx.verify import run, session

#: Calls each variant makes at least per batch size and round.
MIN_REPEATS = 3
ROUNDS = 3
#: Images per onnxruntime call while the split is streamed.
CHUNK = 32


class ValidationImages:
    """The run's validation split as the exporter reads it: spread samples and the whole split,
    normalised exactly as the run evaluated (``eval_transform`` then ``normalize``)."""

    def __init__(self, dataset: Any, preprocessing: Any, limit: int | None = None) -> None:
        self.dataset, self.preprocessing = dataset, preprocessing
        self.size = len(dataset) if limit is None else min(limit, len(dataset))

    @classmethod
    def of_spec(cls, spec: Mapping[str, Any], preprocessing: Any, limit: int | None = None) -> "ValidationImages | None":
        """None when the run's data set cannot be read any more (the caller falls back to what it has)."""
        import warnings

        from vitcore.api import VitcoreError, load_splits

        if "data" not in spec:
            return None
        try:
            splits = load_splits(dict(spec))
        except VitcoreError as exc:
            warnings.warn(f"onnx: the run's validation images are not available ({exc}); the variants are "
                          "compared on the check images only", stacklevel=2)
            return None
        return cls(splits.val, preprocessing, limit)

    def _load(self, indices: Sequence[int]) -> tuple[np.ndarray, list[int]]:
        import torch

        from vitcore.api import eval_transform, normalize

        transform = eval_transform(self.preprocessing)
        items = [self.dataset[i] for i in indices]
        images = normalize(torch.stack([transform(image) for image, _ in items]), self.preprocessing)
        return images.float().numpy(), [int(label) for _, label in items]

    def sample(self, count: int) -> tuple[np.ndarray, list[int]]:
        """``count`` images spread evenly over the split (the same ones every time)."""
        step = max(1, self.size // max(1, count))
        return self._load(list(range(0, self.size, step))[:count])

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[np.ndarray, list[int]]]:
        for start in range(0, self.size, size):
            yield self._load(range(start, min(start + size, self.size)))


def _batch_of(images: np.ndarray, size: int) -> np.ndarray:
    """``size`` images: the first ones, repeated when there are fewer."""
    reps = -(-size // len(images))
    return np.concatenate([images] * reps)[:size]


def latencies(sessions: Mapping[str, Any], images: np.ndarray, batch_sizes: Sequence[int],
              seconds: float = 0.25) -> dict[str, dict[str, dict]]:
    """``{variant: {str(batch): {"ms_per_batch", "ms_per_image"}}}``, interleaved rounds, lowest median."""
    name = next(iter(sessions.values())).get_inputs()[0].name
    inputs = {b: _batch_of(images, b) for b in batch_sizes}
    for sess in sessions.values():  # warm-up: first calls allocate and pick kernels
        for b in batch_sizes:
            sess.run(None, {name: inputs[b]})
    medians: dict[str, dict[int, list[float]]] = {v: {b: [] for b in batch_sizes} for v in sessions}
    for _ in range(ROUNDS):
        for variant, sess in sessions.items():
            for b in batch_sizes:
                times: list[float] = []
                began = time.perf_counter()
                while len(times) < MIN_REPEATS or time.perf_counter() - began < seconds:
                    start = time.perf_counter()
                    sess.run(None, {name: inputs[b]})
                    times.append(time.perf_counter() - start)
                medians[variant][b].append(statistics.median(times) * 1000)
    return {v: {str(b): {"ms_per_batch": round(min(ms), 6), "ms_per_image": round(min(ms) / b, 6)}
                for b, ms in by_batch.items()} for v, by_batch in medians.items()}


def compare(files: Mapping[str, Path], model: Any, val: ValidationImages | None, images: np.ndarray,
            labels: Sequence[int] | None, batch_sizes: Sequence[int], fixed_batch: int | None,
            seconds: float = 0.25) -> dict[str, Any]:
    """The comparison record: ``variants`` (one entry per file, fp32 first) and ``fastest``.

    ``model`` (the PyTorch model) is run beside the fp32 file so its agreement with PyTorch is
    also measured on the whole split. ``fixed_batch``: the files' batch dimension when it is not
    symbolic (then only that batch size is timed)."""
    import torch

    sessions = {variant: session(path) for variant, path in files.items()}
    reference = next(iter(files))
    agree = {v: 0 for v in files}
    correct = {v: 0 for v in files}
    torch_agree = count = 0
    labelled = True
    source = "validation split" if val is not None else "check images"
    stream = val.chunks() if val is not None else iter([(images, list(labels) if labels is not None else None)])
    for chunk, chunk_labels in stream:
        logits = {v: run(s, chunk, fixed_batch) for v, s in sessions.items()}
        with torch.inference_mode():
            pytorch = model(torch.from_numpy(chunk)).float().numpy()
        top = {v: out.argmax(1) for v, out in logits.items()}
        for v in files:
            agree[v] += int((top[v] == top[reference]).sum())
            if chunk_labels is not None:
                correct[v] += int((top[v] == np.asarray(chunk_labels)).sum())
        labelled = labelled and chunk_labels is not None
        torch_agree += int((top[reference] == pytorch.argmax(1)).sum())
        count += len(chunk)
    sizes = [fixed_batch] if fixed_batch else list(batch_sizes)
    timing = latencies(sessions, images, sizes, seconds)
    base_bytes = _size(files[reference])
    variants: dict[str, Any] = {}
    for v, path in files.items():
        entry = {
            "file": path.name,
            "bytes": _size(path),
            "size_ratio": round(_size(path) / base_bytes, 4),
            "latency": timing[v],
            "speedup_vs_fp32": {b: round(timing[reference][b]["ms_per_batch"] / t["ms_per_batch"], 3)
                                for b, t in timing[v].items()},
            "top1_agreement_vs_fp32": round(agree[v] / count, 6),
            "accuracy": round(correct[v] / count, 6) if labelled else None,
        }
        variants[v] = entry
    variants[reference]["top1_agreement_vs_pytorch"] = round(torch_agree / count, 6)
    fastest = {b: min(variants, key=lambda v: timing[v][b]["ms_per_batch"]) for b in timing[reference]}
    return {"images": count, "source": source, "batch_sizes": sizes, "variants": variants, "fastest": fastest,
            "latency_method": f"onnxruntime CPUExecutionProvider, default threads; variants interleaved over "
                              f"{ROUNDS} rounds of >= {seconds:g} s each, lowest per-round median"}


def fastest_line(comparison: Mapping[str, Any]) -> str:
    """One sentence for the user: the fastest variant at each batch size and by how much."""
    variants = comparison["variants"]
    reference = next(iter(variants))
    parts = []
    for b, best in comparison["fastest"].items():
        ms, base = variants[best]["latency"][b]["ms_per_batch"], variants[reference]["latency"][b]["ms_per_batch"]
        agreement = variants[best]["top1_agreement_vs_fp32"]
        parts.append(f"batch {b}: {best} ({variants[best]['file']}) {ms:.3g} ms"
                     + ("" if best == reference else f", {base / ms:.2f}x {reference}'s {base:.3g} ms, top-1 agreement "
                                                      f"{agreement:.1%}"))
    return f"onnx: fastest on this machine: {'; '.join(parts)} (agreement over {comparison['images']} images, " \
           f"{comparison['source']})"
