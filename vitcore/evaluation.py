"""Evaluating a model on one split: the full figures, kept in the run as ``evaluations/<name>.json``.

Top-1/top-5, per-class precision, recall and F1 with their macro and weighted averages, the
labelled confusion matrix and the expected calibration error come from torchmetrics (not
hand-written formulas); the reliability diagram, the confusion matrix and a gallery of the most
confident mistakes are drawn beside the JSON (``vitcore.evaluation_figures``). The end of a run
calls ``evaluate_test_split`` once with the best weights; ``vitcore evaluate`` calls
``evaluate_split`` and ``write_evaluation`` on whatever split or folder it is given.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from vitcore.errors import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from vitcore.components import DataSplits, Preprocessing
    from vitcore.engine.device import Precision

#: Bins of the reliability diagram and of the expected calibration error (equal width over [0, 1]).
CALIBRATION_BINS = 15
#: Wrong predictions kept (highest confidence first) for the gallery and the JSON.
GALLERY_SIZE = 16
#: Above this many classes summary.json leaves the confusion matrix to the evaluation file.
SUMMARY_CONFUSION_LIMIT = 50
EVALUATIONS_DIR = "evaluations"

__all__ = ["CALIBRATION_BINS", "EVALUATIONS_DIR", "collect_logits", "compute_metrics", "evaluate_split",
           "evaluate_test_split", "evaluation_name", "read_evaluations", "summary_view", "write_evaluation"]


def collect_logits(model: "torch.nn.Module", dataset: Any, preprocessing: "Preprocessing",
                   device: "torch.device", precision: "Precision", batch_size: int = 64,
                   num_workers: int | None = None) -> tuple["torch.Tensor", "torch.Tensor"]:
    """``(logits (N, C) float32, labels (N,) int64)`` on the CPU for every item of ``dataset``, in
    its order, through the evaluation pipeline the run validated with (resize, centre crop,
    normalisation on the device, the run's autocast precision)."""
    import torch
    from torch.utils.data import DataLoader

    from vitcore.engine.data import DeviceNormalize, TransformedDataset, auto_workers
    from vitcore.engine.distributed import DistInfo
    from vitcore.engine.transforms import eval_transform

    workers = auto_workers(device, DistInfo()) if num_workers is None else num_workers
    loader = DataLoader(TransformedDataset(dataset, eval_transform(preprocessing)), batch_size=batch_size,
                        num_workers=workers, pin_memory=device.type == "cuda")
    normalize = DeviceNormalize(preprocessing, device)
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        with torch.no_grad():
            for images, targets in loader:
                with precision.autocast(device):
                    out = model(normalize(images))
                logits.append(out.float())  # stays on the device: one read after the last batch
                labels.append(targets)
    finally:
        model.train(was_training)
    if not logits:
        raise VitcoreError("the split to evaluate holds no images")
    return torch.cat(logits).cpu(), torch.cat(labels).long()


def compute_metrics(logits: "torch.Tensor", labels: "torch.Tensor", classes: Sequence[str],
                    n_bins: int = CALIBRATION_BINS, gallery_size: int = GALLERY_SIZE) -> dict[str, Any]:
    """Every figure of one evaluation from its logits and true labels, as plain JSON values.

    Precision of a class never predicted is 0 (torchmetrics' ``zero_division``); macro averages
    skip classes with neither images nor predictions (torchmetrics' rule), weighted ones weigh by
    support. ``confident_mistakes`` holds dataset indices; ``evaluate_split`` adds file paths.
    """
    import torch
    import torch.nn.functional as F
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_calibration_error,
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    num_classes = len(classes)
    logits, labels = logits.float(), labels.long()
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise VitcoreError(f"the model gives {tuple(logits.shape)} logits for {num_classes} classes")
    probs = logits.softmax(dim=1)
    confidence, predicted = probs.max(dim=1)
    kw: dict[str, Any] = {"num_classes": num_classes}

    def scores(average: str | None) -> dict[str, Any]:
        return {
            "precision": multiclass_precision(logits, labels, average=average, **kw),
            "recall": multiclass_recall(logits, labels, average=average, **kw),
            "f1": multiclass_f1_score(logits, labels, average=average, **kw),
        }

    confusion = multiclass_confusion_matrix(logits, labels, **kw)
    support = confusion.sum(dim=1)
    per_class = scores(None)
    acc5 = (float(multiclass_accuracy(logits, labels, average="micro", top_k=5, **kw))
            if num_classes > 5 else None)  # with 5 classes or fewer it is always 1
    ece = float(multiclass_calibration_error(probs, labels, n_bins=n_bins, norm="l1", **kw))
    wrong = (predicted != labels).nonzero().flatten()
    worst = wrong[confidence[wrong].argsort(descending=True, stable=True)][:gallery_size]
    return {
        "images": int(labels.numel()),
        "classes": list(classes),
        "loss": float(F.cross_entropy(logits, labels)),
        "acc1": float(multiclass_accuracy(logits, labels, average="micro", **kw)),
        "acc5": acc5,
        "per_class": {
            name: {"precision": float(per_class["precision"][i]), "recall": float(per_class["recall"][i]),
                   "f1": float(per_class["f1"][i]), "support": int(support[i])}
            for i, name in enumerate(classes)
        },
        "macro": {key: float(value) for key, value in scores("macro").items()},
        "weighted": {key: float(value) for key, value in scores("weighted").items()},
        # Per-class accuracy (= recall), as `vitcore evaluate` and the epoch records always gave it.
        "per_class_acc": {name: float(per_class["recall"][i]) for i, name in enumerate(classes)},
        "confusion": confusion.tolist(),
        "confusion_layout": "rows: true class, columns: predicted class, in the order of classes",
        "calibration": {"ece": ece, "n_bins": n_bins, "bins": reliability_bins(confidence, predicted == labels,
                                                                                n_bins)},
        "confident_mistakes": [
            {"index": int(i), "true": classes[int(labels[i])], "predicted": classes[int(predicted[i])],
             "confidence": float(confidence[i])}
            for i in worst
        ],
        "mistakes": int(wrong.numel()),
    }


def reliability_bins(confidence: "torch.Tensor", correct: "torch.Tensor", n_bins: int) -> list[dict[str, Any]]:
    """Equal-width confidence bins: images, mean confidence and accuracy in each (the diagram's bars).

    Bins are ``[lower, upper)`` as torchmetrics bins them, the last one closed at 1.
    """
    import torch

    edges = torch.linspace(0, 1, n_bins + 1, dtype=confidence.dtype)
    index = (torch.bucketize(confidence, edges, right=True) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidence.double())
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct.double())
    return [
        {"lower": round(float(edges[b]), 6), "upper": round(float(edges[b + 1]), 6), "count": int(count[b]),
         "confidence": float(conf_sum[b] / count[b]) if count[b] else None,
         "accuracy": float(acc_sum[b] / count[b]) if count[b] else None}
        for b in range(n_bins)
    ]


def evaluate_split(model: "torch.nn.Module", dataset: Any, preprocessing: "Preprocessing",
                   classes: Sequence[str], device: "torch.device", precision: "Precision",
                   batch_size: int = 64) -> dict[str, Any]:
    """Evaluate ``model`` on every image of ``dataset`` (``(image, label)`` items labelled with
    ``classes``): ``compute_metrics``' figures, each confident mistake with its file when the
    dataset lists ``samples`` (path, label). JSON-able; ``write_evaluation`` keeps it in a run."""
    logits, labels = collect_logits(model, dataset, preprocessing, device, precision, batch_size)
    result = compute_metrics(logits, labels, classes)
    paths = _paths_of(dataset)
    if paths is not None:
        for mistake in result["confident_mistakes"]:
            mistake["path"] = paths[mistake["index"]]
    result["precision"] = precision.name
    return result


def _paths_of(dataset: Any) -> list[str] | None:
    samples = getattr(dataset, "samples", None)
    if not isinstance(samples, (list, tuple)) or len(samples) != len(dataset):
        return None
    try:
        return [str(path) for path, _label in samples]
    except (TypeError, ValueError):
        return None


def evaluation_name(text: str) -> str:
    """A file-name-safe evaluation name (``test``, ``val``, a folder's name)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "evaluation"
    return name[:80]


def write_evaluation(run_dir: Path, name: str, result: dict[str, Any], dataset: Any = None) -> Path:
    """Keep ``result`` in the run: ``run_dir/evaluations/<name>.json`` (atomic), its reliability
    diagram, confusion matrix and confident-mistakes gallery beside it (PNG, atomic); an earlier
    evaluation of that name is replaced. The gallery's images come from ``dataset`` (indexed) or
    the mistakes' ``path``; without either it is left out. Returns the JSON's path."""
    from vitcore.evaluation_figures import draw_confusion, draw_mistakes, draw_reliability
    from vitcore.runs import now_iso, write_json_atomic

    name = evaluation_name(name)
    folder = run_dir / EVALUATIONS_DIR
    pictures = {"reliability": draw_reliability(result, folder / f"{name}_reliability.png", name),
                "confusion": draw_confusion(result, folder / f"{name}_confusion.png", name)}
    gallery = draw_mistakes(result, folder / f"{name}_mistakes.png", dataset, name)
    if gallery is not None:
        pictures["mistakes"] = gallery
    record = {"name": name, "evaluated_at": now_iso(), **result,
              "pictures": {kind: path.name for kind, path in pictures.items()}}
    path = folder / f"{name}.json"
    write_json_atomic(path, record)
    return path


def summary_view(record: dict[str, Any]) -> dict[str, Any]:
    """What summary.json keeps of an evaluation: all of it but a very large confusion matrix, with
    the file it came from (relative to the run)."""
    view = dict(record)
    if len(view.get("classes") or ()) > SUMMARY_CONFUSION_LIMIT:
        view.pop("confusion", None)
        view["confusion_layout"] = "in the evaluation file (too many classes for summary.json)"
    view["file"] = f"{EVALUATIONS_DIR}/{record['name']}.json"
    return view


def evaluate_test_split(raw_model: "torch.nn.Module", splits: "DataSplits", preprocessing: "Preprocessing",
                        classes: Sequence[str], device: "torch.device", precision: "Precision",
                        run_dir: Path, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The end of a run: evaluate the best model once on the data set's test split, keep it as
    ``evaluations/test.json`` (pictures beside it) and return what summary.json's ``test`` holds;
    None when the data set has no test split. ``extra`` (which checkpoint, which weights) is kept
    in the record."""
    from vitcore.runs import read_json

    test = splits.test
    if test is None or len(test) == 0:  # type: ignore[arg-type]
        return None
    result = evaluate_split(raw_model, test, preprocessing, classes, device, precision)
    result["source"] = {"kind": "split", "split": "test"}
    result.update(extra or {})
    path = write_evaluation(run_dir, "test", result, dataset=test)
    return summary_view(read_json(path))


def read_evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """Every evaluation kept in ``run_dir`` (``evaluations/*.json``), oldest first; an unreadable
    file is skipped (a report still shows the rest)."""
    found = []
    for path in sorted((run_dir / EVALUATIONS_DIR).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            record.setdefault("name", path.stem)
            found.append(record)
    return sorted(found, key=lambda r: (str(r.get("evaluated_at", "")), r["name"]))
