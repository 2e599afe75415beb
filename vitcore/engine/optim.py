"""Optimizer with decay-aware parameter groups, and per-step learning-rate schedules."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from vitcore.spec import TrainSpec

#: Parameter names containing these never get weight decay (embeddings and tokens, any model).
NO_DECAY_KEYWORDS = ("pos_embed", "pos_embedding", "cls_token", "class_token", "dist_token", "reg_token")


def param_groups(
    model: torch.nn.Module, weight_decay: float, skip: Iterable[str] = ()
) -> list[dict]:
    """Two groups: weights that decay, and norms/biases/position embeddings/tokens that do not."""
    skip = set(skip)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        exempt = param.ndim <= 1 or name in skip or any(k in name for k in NO_DECAY_KEYWORDS)
        (no_decay if exempt else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(groups: list[dict], train: TrainSpec, device: torch.device) -> torch.optim.Optimizer:
    # Fused kernels: one launch for all parameters instead of one per tensor (CUDA only).
    fused = device.type == "cuda"
    if train.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=train.lr, betas=train.betas, fused=fused or None)
    return torch.optim.SGD(groups, lr=train.lr, momentum=train.momentum, nesterov=True, fused=fused or None)


def lr_factor(step: int, total_steps: int, warmup_steps: int, train: TrainSpec, steps_per_epoch: int) -> float:
    """The multiplier of ``train.lr`` after ``step`` optimizer steps."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if train.schedule == "constant":
        return 1.0
    if train.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        return train.step_gamma ** (epoch // train.step_epochs)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, progress))
    floor = train.min_lr / train.lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, train: TrainSpec, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = train.epochs * steps_per_epoch
    warmup = int(round(train.warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, train, steps_per_epoch)
    )
