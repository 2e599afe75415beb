"""A harness around the engine's hot loop: synthetic batches already on the device, and the
bare PyTorch loop it is measured against (benchmarks/train_step.py, tests/test_hot_loop_sync.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vitcore.components import ModelContext
from vitcore.engine.data import DeviceNormalize
from vitcore.engine.optim import build_optimizer, build_scheduler, param_groups
from vitcore.engine.trainer import Trainer
from vitcore.spec import load_dict

#: ViT sizes: (depth, width, heads, patch, image).
MODELS = {
    "vit_cpu_small": dict(depth=4, embed_dim=96, num_heads=4, patch_size=8, image_size=64),
    "vit_ti16": dict(depth=12, embed_dim=192, num_heads=3, patch_size=16, image_size=224),
    "vit_s16": dict(depth=12, embed_dim=384, num_heads=6, patch_size=16, image_size=224),
    "vit_b16": dict(depth=12, embed_dim=768, num_heads=12, patch_size=16, image_size=224),
}


@dataclass
class Setup:
    trainer: Trainer
    model: torch.nn.Module
    raw_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    normalize: DeviceNormalize
    batches: list[tuple[torch.Tensor, torch.Tensor]]


def make_setup(model_name: str, batch: int | str, steps: int, precision: str = "auto", compile_model: bool = False,
               device: str = "auto", log_every_steps: int = 20) -> Setup:
    """A trainer configured like a real run, and synthetic uint8 batches already on the device."""
    sizes = MODELS[model_name]
    spec = {
        "data": {"type": "shapes"},  # never loaded: the benchmark feeds synthetic batches
        "model": {"type": "torchvision_vit", **sizes},
        "train": {"batch_size": batch, "precision": precision, "compile": compile_model, "device": device,
                  "log_every_steps": log_every_steps, "warmup_epochs": 0},
        "sinks": [], "visualizers": [], "exporters": [],
    }
    resolved = load_dict(spec)
    trainer = Trainer(resolved)
    torch.manual_seed(0)
    builder = resolved.model.instantiate()

    raw = builder.build(ModelContext(num_classes=10, class_names=[str(i) for i in range(10)]))
    cfg = resolved.train
    if batch == "auto":  # as a run with batch_size auto chooses it (probed on CUDA)
        batch = cfg.batch_size = trainer._auto_batch_size(builder, raw, builder.preprocessing(), 10, 10**9)
    raw = raw.to(trainer.device)
    optimizer = build_optimizer(param_groups(raw, cfg.weight_decay, builder.no_weight_decay(raw)), cfg,
                                trainer.device)
    scheduler = build_scheduler(optimizer, cfg, steps)
    scaler = torch.amp.GradScaler(trainer.device.type) if trainer.precision.use_scaler else None
    model = torch.compile(raw) if compile_model else raw
    normalize = DeviceNormalize(builder.preprocessing(), trainer.device)
    size = sizes["image_size"]
    generator = torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator).to(trainer.device),
         torch.randint(0, 10, (batch,), generator=generator).to(trainer.device))
        for _ in range(4)
    ]
    trainer.run_dir = None  # no run directory: nothing is written
    return Setup(trainer, model, raw, optimizer, scheduler, scaler, normalize, batches)


def engine_epoch(s: Setup, steps: int) -> None:
    s.trainer.train_epoch(s.model, (s.batches[i % len(s.batches)] for i in range(steps)), s.normalize,
                          s.optimizer, s.scheduler, s.scaler, [], steps, 0)


def bare_epoch(s: Setup, steps: int) -> None:
    """The loop a person writes by hand: same model, batches, precision and optimizer."""
    device = s.trainer.device
    criterion = torch.nn.CrossEntropyLoss()
    s.model.train()
    for i in range(steps):
        images, targets = s.batches[i % len(s.batches)]
        images = s.normalize(images)
        with s.trainer.precision.autocast(device):
            loss = criterion(s.model(images), targets)
        if s.scaler is not None:
            s.scaler.scale(loss).backward()
            s.scaler.step(s.optimizer)
            s.scaler.update()
        else:
            loss.backward()
            s.optimizer.step()
        s.optimizer.zero_grad(set_to_none=True)
        s.scheduler.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
