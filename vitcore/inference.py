"""Using a finished run: rebuild its best model, evaluate it on a folder, predict images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vitcore.components import ModelContext, Preprocessing
from vitcore.engine.checkpoint import load_checkpoint
from vitcore.errors import VitcoreError
from vitcore.runs import read_json


@dataclass
class LoadedRun:
    run_dir: Path
    model: torch.nn.Module
    classes: list[str]
    preprocessing: Preprocessing
    checkpoint: Path


def load_run_model(run_dir: Path, device: torch.device | None = None) -> LoadedRun:
    """The run's best model (last.pt when no best exists yet), in eval mode."""
    from vitcore.plugins import registry

    ckpt_path = run_dir / "checkpoints" / "best.pt"
    if not ckpt_path.is_file():
        ckpt_path = run_dir / "checkpoints" / "last.pt"
    if not ckpt_path.is_file():
        raise VitcoreError(f"{run_dir}: no checkpoint yet (checkpoints/best.pt or last.pt); train it first")
    ckpt = load_checkpoint(ckpt_path)
    classes = list(ckpt["classes"])
    model_spec: dict[str, Any] = dict(ckpt.get("model_spec") or read_json(run_dir / "spec.json")["model"])
    model_spec.pop("init_from", None)
    entry = registry("models").get(model_spec.pop("type"))
    builder = entry.component(entry.component.Options.model_validate(model_spec))
    model = builder.build(ModelContext(num_classes=len(classes), class_names=classes, load_pretrained=False))
    model.load_state_dict(ckpt["model"])
    model.to(device or torch.device("cpu")).eval()
    return LoadedRun(run_dir, model, classes, builder.preprocessing(), ckpt_path)


@torch.no_grad()
def predict(loaded: LoadedRun, images: list[Path], top_k: int = 5) -> list[dict[str, Any]]:
    from vitcore.images import load_rgb
    from vitcore.engine.data import DeviceNormalize
    from vitcore.engine.transforms import eval_transform

    device = next(loaded.model.parameters()).device
    transform = eval_transform(loaded.preprocessing)
    normalize = DeviceNormalize(loaded.preprocessing, device)
    batch = torch.stack([transform(load_rgb(p)) for p in images])
    probs = loaded.model(normalize(batch)).float().softmax(dim=1)
    k = min(top_k, len(loaded.classes))
    values, indices = probs.topk(k, dim=1)
    return [
        {
            "image": str(path),
            "top": [
                {"label": loaded.classes[i], "probability": round(p, 6)}
                for p, i in zip(vals.tolist(), idx.tolist())
            ],
        }
        for path, vals, idx in zip(images, values, indices)
    ]


def evaluate_folder(loaded: LoadedRun, folder: Path, batch_size: int = 64, split: str | None = None) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix on a folder of class sub-folders, or on
    one split of a train/val/test root (``split``; default test, else val)."""
    from torch.utils.data import DataLoader

    from vitcore.builtin.datasets import labelled_folder, split_folder
    from vitcore.engine.data import DeviceNormalize, TransformedDataset
    from vitcore.engine.device import resolve_precision
    from vitcore.engine.evaluate import evaluate
    from vitcore.engine.transforms import eval_transform

    folder, split = split_folder(folder, loaded.classes, split)
    items = TransformedDataset(labelled_folder(folder, loaded.classes), eval_transform(loaded.preprocessing))
    device = next(loaded.model.parameters()).device
    loader = DataLoader(items, batch_size=batch_size)
    result = evaluate(loaded.model, loader, DeviceNormalize(loaded.preprocessing, device),
                      resolve_precision("fp32", device), len(loaded.classes))
    return {
        "folder": str(folder),
        "split": split,
        "images": result.count,
        "loss": result.loss,
        "acc1": result.acc1,
        "acc5": result.acc5,
        "per_class_acc": dict(zip(loaded.classes, result.per_class_acc)),
        "confusion": result.confusion,
        "classes": loaded.classes,
    }
