"""A harness around the engine's hot loop: synthetic batches already on the device, and the
bare PyTorch loop it is measured against (benchmarks/train_step.py, tests/test_hot_loop_sync.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from vitcore.components import ModelContext
from vitcore.engine import distributed as dist
from vitcore.engine.data import DeviceNormalize
from vitcore.engine.device import Precision, resolve_precision, select_device
from vitcore.engine.events import RunEvents
from vitcore.engine.loop import StepLoop
from vitcore.engine.optim import build_scheduler
from vitcore.engine.progress import RunProgress
from vitcore.engine.setup import choose_batch_size, make_optimizer, with_batch_size
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
    device: torch.device
    precision: Precision
    model: torch.nn.Module
    raw_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    normalize: Callable[[torch.Tensor], torch.Tensor]
    batches: list[tuple[torch.Tensor, torch.Tensor]]
    cfg: Any
    progress: RunProgress
    #: Where recovery checkpoints go with ``checkpoint_every_steps`` (None: none are written).
    checkpoint_dir: Path | None = None

    def train_epoch(self, loader: Iterable, steps: int, prepare: Callable | None = None) -> tuple[float, float, int]:
        """The engine's own hot loop (``StepLoop``) over ``loader``; nothing is logged, and only
        recovery checkpoints (when asked for) are written."""
        loop = StepLoop(self.cfg, self.device, self.precision, dist.DistInfo(), self.optimizer, self.scheduler,
                        self.scaler, self.normalize if prepare is None else prepare, [], self.progress,
                        RunEvents.silent(), recovery=self._recovery if self.checkpoint_dir else None)
        loop.lines.enabled = False  # benchmarks print their own figures
        return loop.train_epoch(self.model, loader, steps, 0)

    def _recovery(self, position: dict[str, Any]) -> None:
        """What a run's mid-epoch last.pt holds, written the same way (atomic, fsync'd)."""
        from vitcore.engine.checkpoint import atomic_save, rng_state

        atomic_save({"format": 1, "position": position, "model": self.raw_model.state_dict(),
                     "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     **self.progress.checkpoint_state(), "rng": rng_state()},
                    self.checkpoint_dir / "last.pt")


def make_setup(model_name: str, batch: int | str, steps: int, precision: str = "auto", compile_model: bool = False,
               device: str = "auto", log_every_steps: int = 20, checkpoint_every_steps: int | None = None,
               checkpoint_dir: Path | None = None) -> Setup:
    """The engine's parts configured like a real run, and synthetic uint8 batches already on the device."""
    sizes = MODELS[model_name]
    spec = {
        "data": {"type": "shapes"},  # never loaded: the benchmark feeds synthetic batches
        "model": {"type": "torchvision_vit", **sizes},
        "train": {"batch_size": batch, "precision": precision, "compile": compile_model, "device": device,
                  "log_every_steps": log_every_steps, "warmup_epochs": 0,
                  "checkpoint_every_steps": checkpoint_every_steps},
        "sinks": [], "visualizers": [], "exporters": [],
    }
    resolved = load_dict(spec)
    target = select_device(resolved.train.device)
    mixed = resolve_precision(resolved.train.precision, target)
    torch.manual_seed(0)
    builder = resolved.model.instantiate()

    raw = builder.build(ModelContext(num_classes=10, class_names=[str(i) for i in range(10)]))
    if batch == "auto":  # as a run with batch_size auto chooses it (probed on CUDA)
        batch, _how = choose_batch_size(resolved, builder, raw, builder.preprocessing(), 10, 10**9,
                                        dist.DistInfo(), target, mixed)
        resolved = with_batch_size(resolved, batch)
    cfg = resolved.train
    raw = raw.to(target)
    optimizer = make_optimizer(builder, raw, resolved, target)
    scheduler = build_scheduler(optimizer, cfg, steps)
    scaler = torch.amp.GradScaler(target.type) if mixed.use_scaler else None
    model = torch.compile(raw) if compile_model else raw
    normalize = DeviceNormalize(builder.preprocessing(), target)
    size = sizes["image_size"]
    generator = torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator).to(target),
         torch.randint(0, 10, (batch,), generator=generator).to(target))
        for _ in range(4)
    ]
    # No run directory: nothing is written.
    progress = RunProgress(run_dir=Path("."), best_metric=cfg.best_metric, facts={})
    return Setup(target, mixed, model, raw, optimizer, scheduler, scaler, normalize, batches, cfg, progress,
                 checkpoint_dir if checkpoint_every_steps else None)


def engine_epoch(s: Setup, steps: int) -> None:
    s.train_epoch((s.batches[i % len(s.batches)] for i in range(steps)), steps)


def bare_epoch(s: Setup, steps: int) -> None:
    """The loop a person writes by hand: same model, batches, precision and optimizer."""
    device = s.device
    criterion = torch.nn.CrossEntropyLoss()
    s.model.train()
    for i in range(steps):
        images, targets = s.batches[i % len(s.batches)]
        images = s.normalize(images)
        with s.precision.autocast(device):
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
