"""Evaluation: loss, top-1, top-5, per-class accuracy and the confusion matrix.

Everything is summed on the device and read back once, after the last batch (and, under
torchrun, after one all-reduce), so evaluation never waits on the host per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F

from vitcore.engine.data import DeviceNormalize
from vitcore.engine.device import Precision
from vitcore.engine.distributed import all_reduce_sum


@dataclass
class EvalResult:
    loss: float
    acc1: float
    acc5: float | None
    per_class_acc: list[float]
    confusion: list[list[int]]
    count: int

    def as_record(self, prefix: str = "val_") -> dict:
        out = {f"{prefix}loss": self.loss, f"{prefix}acc1": self.acc1}
        if self.acc5 is not None:
            out[f"{prefix}acc5"] = self.acc5
        out[f"{prefix}per_class_acc"] = self.per_class_acc
        out["confusion"] = self.confusion
        return out


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    normalize: DeviceNormalize,
    precision: Precision,
    num_classes: int,
) -> EvalResult:
    device = normalize.device
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct5 = torch.zeros((), dtype=torch.int64, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    k = min(5, num_classes)
    for images, targets in batches:
        images = normalize(images)
        targets = targets.to(device, non_blocking=True)
        with precision.autocast(device):
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, targets, reduction="sum")
        top = logits.topk(k, dim=1).indices
        correct5 += (top == targets[:, None]).any(dim=1).sum()
        confusion += torch.bincount(targets * num_classes + top[:, 0], minlength=num_classes**2)
    all_reduce_sum(loss_sum)
    all_reduce_sum(correct5)
    all_reduce_sum(confusion)
    model.train(was_training)

    matrix = confusion.view(num_classes, num_classes).cpu()
    count = int(matrix.sum())
    per_class_total = matrix.sum(dim=1).clamp(min=1)
    per_class = (matrix.diag().double() / per_class_total).tolist()
    return EvalResult(
        loss=float(loss_sum) / max(1, count),
        acc1=float(matrix.diag().sum()) / max(1, count),
        acc5=float(correct5) / max(1, count) if num_classes >= 5 else None,
        per_class_acc=per_class,
        confusion=matrix.tolist(),
        count=count,
    )
