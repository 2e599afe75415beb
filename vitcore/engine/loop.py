"""The fit loop: epochs of training steps, evaluation, checkpoints and the epoch-end moment.

The hot loop (``StepLoop.train_epoch``) never waits on the host: loss and accuracy are summed on
the device and read once per logging interval (``train.log_every_steps``) and once per epoch.
"""

from __future__ import annotations

import math
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

from vitcore.components import StopRun
from vitcore.engine import distributed as dist
from vitcore.engine.checkpoint import atomic_save, preserved_rng, rng_state
from vitcore.engine.device import Precision
from vitcore.engine.evaluate import EvalResult, evaluate
from vitcore.engine.events import RunEvents
from vitcore.engine.progress import RunProgress
from vitcore.engine.setup import RunParts
from vitcore.errors import TrainingDiverged
from vitcore.spec import TrainSpec


@dataclass
class Outcome:
    """How the fit loop ended: the status, and whether the end-of-run pictures and exports follow."""

    status: str
    finish: bool = True


class StepLoop:
    """Training steps over any iterable of uint8 image and label batches.

    Public so benchmarks and tests can time exactly this loop against a bare PyTorch loop on the
    same batches (``vitcore.engine.harness``).
    """

    def __init__(self, cfg: TrainSpec, device: torch.device, precision: Precision, info: dist.DistInfo,
                 optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                 prepare: Callable[[torch.Tensor], torch.Tensor], batch_transforms: list[Callable],
                 progress: RunProgress, events: RunEvents,
                 recovery: Callable[[dict[str, Any]], None] | None = None,
                 ema: Any = None, ema_source: torch.nn.Module | None = None, teacher: Any = None,
                 distill: Any = None) -> None:
        self.cfg, self.device, self.precision, self.info = cfg, device, precision, info
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.prepare, self.batch_transforms = prepare, batch_transforms
        self.progress, self.events = progress, events
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        #: ``train.ema``: updated from ``ema_source`` (the plain module) after every optimizer step.
        self.ema, self.ema_source = ema, ema_source
        #: ``distill``: the teacher's logits join the loss.
        self.teacher = teacher
        if teacher is not None:
            from vitcore.engine.distill import distillation_loss

            self.distill_loss = distillation_loss(distill.kind, distill.temperature, distill.weight, self.criterion)
        #: Writes a mid-epoch last.pt from a position (``train.checkpoint_every_*``); None: never.
        self.recovery = recovery if (cfg.checkpoint_every_steps or cfg.checkpoint_every_minutes) else None
        self._last_recovery = time.perf_counter()
        self.lines = ProgressLines()

    def train_epoch(self, model: torch.nn.Module, loader: Iterable, steps_per_epoch: int,
                    epoch: int, start: dict[str, Any] | None = None) -> tuple[float, float, int]:
        """One epoch (0-based ``epoch``): returns (mean loss, accuracy, images seen over all ranks).

        ``start`` is the position a mid-epoch last.pt saved: the loader then starts at its next
        batch (``GlobalBatchSampler.set_epoch(skip=...)``) and the epoch's sums go on from it.
        """
        cfg, device, progress = self.cfg, self.device, self.progress
        model.train()
        accum = cfg.grad_accum_steps
        as_tensor = lambda value=0.0: torch.tensor(value, dtype=torch.float64, device=device)  # noqa: E731
        sums = (start or {}).get("sums", [0.0, 0.0, 0, 0.0, 0.0, 0])
        epoch_loss, epoch_correct, window_loss, window_correct = map(as_tensor, (sums[0], sums[1], sums[3], sums[4]))
        epoch_count, window_count = int(sums[2]), int(sums[5])
        window_start = time.perf_counter()
        micro = int((start or {}).get("micro", 0))
        step_in_epoch = int((start or {}).get("steps", 0))
        bar = _progress_bar(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", self.info.is_main, step_in_epoch)
        every = log_interval(cfg.log_every_steps, steps_per_epoch)
        no_sync = getattr(model, "no_sync", None)
        self.optimizer.zero_grad(set_to_none=True)
        for images, targets in loader:
            images = self.prepare(images)
            targets = targets.to(device, non_blocking=True)
            hard = targets
            if self.batch_transforms:
                transform = self.batch_transforms[random.randrange(len(self.batch_transforms))]
                images, targets = transform(images, targets)
            micro += 1
            syncing = micro % accum == 0
            with (no_sync() if no_sync is not None and not syncing else nullcontext()):
                with self.precision.autocast(device):
                    logits = model(images)
                    if self.teacher is None:
                        loss = self.criterion(logits, targets)
                    else:
                        loss = self.distill_loss(logits, targets, self.teacher.logits(images))
                scaled = loss / accum
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            batch = hard.shape[0]
            detached = loss.detach().double() * batch
            correct = (logits.detach().argmax(dim=1) == hard).sum()
            epoch_loss += detached
            window_loss += detached
            epoch_correct += correct
            window_correct += correct
            epoch_count += batch
            window_count += batch
            if not syncing:
                continue
            lr = self.scheduler.get_last_lr()[0]  # the rate this step used
            self._optimizer_step(model)
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.ema_source)
            progress.step += 1
            step_in_epoch += 1
            bar.update(1)
            if progress.step % every == 0:
                loss_value, acc_value = self.read_window(window_loss, window_correct, window_count)
                now = time.perf_counter()
                ips = window_count * self.info.world_size / max(now - window_start, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.4f}", acc=f"{acc_value:.3f}", img_s=f"{ips:.0f}")
                if self.info.is_main:
                    self.lines.show(f"epoch {epoch + 1}/{cfg.epochs} step {step_in_epoch}/{steps_per_epoch} "
                                    f"loss {loss_value:.4f} acc {acc_value:.3f} {ips:.0f} img/s")
                self.events.step({"event": "train", "epoch": epoch + 1, "step": progress.step,
                                  "loss": loss_value, "acc": acc_value, "lr": lr,
                                  "images_per_sec": ips, "time": time.time()})
                window_loss.zero_()
                window_correct.zero_()
                window_count, window_start = 0, now
            elif self.info.is_main and self.lines.due():  # between records: no device read, the step only
                self.lines.show(f"epoch {epoch + 1}/{cfg.epochs} step {step_in_epoch}/{steps_per_epoch}")
            if step_in_epoch >= steps_per_epoch:
                break
            if self.recovery is not None and self._recovery_due():
                sums = torch.stack([epoch_loss, epoch_correct.double(), window_loss, window_correct.double()]).tolist()
                self.recovery({"epoch": epoch, "micro": micro, "steps": step_in_epoch,
                               "sums": [sums[0], sums[1], epoch_count, sums[2], sums[3], window_count]})
                self._last_recovery = time.perf_counter()
        bar.close()
        loss_value, acc_value = self.read_window(epoch_loss, epoch_correct, epoch_count)
        return loss_value, acc_value, epoch_count * self.info.world_size

    def _recovery_due(self) -> bool:
        every_steps, every_minutes = self.cfg.checkpoint_every_steps, self.cfg.checkpoint_every_minutes
        if every_steps and self.progress.step % every_steps == 0:
            return True
        return bool(every_minutes) and time.perf_counter() - self._last_recovery >= every_minutes * 60

    def _optimizer_step(self, model: torch.nn.Module) -> None:
        if self.cfg.clip_grad_norm is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.clip_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def read_window(self, loss_sum: torch.Tensor, correct: torch.Tensor, count: int) -> tuple[float, float]:
        """The one host sync per interval: reduce across ranks, read, check for divergence."""
        packed = torch.stack([loss_sum, correct.double(),
                              torch.tensor(float(count), dtype=torch.float64, device=loss_sum.device)])
        dist.all_reduce_sum(packed)
        total_loss, total_correct, total = packed.tolist()
        loss_value = total_loss / max(total, 1.0)
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"training loss became {loss_value} at step {self.progress.step}; stopped. "
                f"{_checkpoints_left(self.progress)} Lower train.lr, enable train.clip_grad_norm or use "
                "precision bf16/fp32."
            )
        return loss_value, total_correct / max(total, 1.0)


def log_interval(log_every_steps: int, steps_per_epoch: int) -> int:
    """Steps between training records: ``train.log_every_steps``, but at least two records per
    epoch, so a short epoch still draws a curve (each record is one host sync)."""
    if steps_per_epoch < 2 * log_every_steps:
        return max(1, steps_per_epoch // 2)
    return log_every_steps


class ProgressLines:
    """Plain progress lines on stdout when stderr is no terminal (a log file, a scheduler): tqdm's
    bar is off there, and an epoch can take hours. One every ``VITCORE_PROGRESS_SECONDS``
    (default 30): with loss, accuracy and images/s at a record, else (slow steps, a long
    ``log_every_steps``) the step alone at the first step after the interval, reading nothing
    from the device. The first line comes at the first step."""

    def __init__(self) -> None:
        import os

        self.enabled = not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
        self.every = float(os.environ.get("VITCORE_PROGRESS_SECONDS", "30"))
        self.last: float | None = None

    def due(self) -> bool:
        return self.enabled and (self.last is None or time.perf_counter() - self.last >= self.every)

    def show(self, text: str) -> None:
        if self.due():
            print(text, flush=True)
            self.last = time.perf_counter()


def _checkpoints_left(progress: RunProgress) -> str:
    """What a diverged run leaves to resume or use: say what is there, not what should be."""
    folder = progress.run_dir / "checkpoints"
    kept = [name for name in ("last.pt", "best.pt") if (folder / name).is_file()]
    if not kept:
        return "No checkpoint was written yet (it diverged in its first epoch)."
    return f"{' and '.join(kept)} from epoch {progress.epoch} are kept in {folder}."


class FitLoop:
    """Runs the epochs of a built run: train, evaluate, checkpoint, then the epoch-end moment."""

    def __init__(self, parts: RunParts, progress: RunProgress, events: RunEvents) -> None:
        self.parts, self.progress, self.events = parts, progress, events
        self.steps = StepLoop(parts.train, parts.device, parts.precision, parts.info, parts.optimizer,
                              parts.scheduler, parts.scaler, parts.train_input, parts.batch_transforms,
                              progress, events, recovery=self._save_recovery if parts.info.is_main else None,
                              ema=parts.ema, ema_source=parts.raw_model, teacher=parts.teacher,
                              distill=parts.resolved.spec.distill)
        checkpoint = parts.checkpoint or {}
        #: Where a mid-epoch last.pt left off (None: at an epoch boundary).
        self.position: dict[str, Any] | None = checkpoint.get("position")
        if parts.info.is_main:
            self._reconcile(checkpoint.get("record"))

    def _reconcile(self, record: dict[str, Any] | None) -> None:
        """A kill between last.pt's rename and the record's append lost that epoch's record: last.pt
        holds it, so it is logged now, once. Every completed epoch keeps exactly one record."""
        if record is None or any(r.get("event") == "epoch" and r.get("epoch") == record.get("epoch")
                                 for r in self.events.history):
            return
        self.events.step(dict(record))

    def _save_recovery(self, position: dict[str, Any]) -> None:
        save_last(self.parts, self.progress, position=position)
        self.progress.write()

    def run(self) -> Outcome:
        parts, progress, cfg = self.parts, self.progress, self.parts.train
        try:
            for epoch in range(progress.epoch, cfg.epochs):
                self._epoch(epoch)
                if cfg.early_stopping_patience and progress.stale_epochs >= cfg.early_stopping_patience:
                    return Outcome("early_stopped")
        except StopRun as stop:  # a component ended the run; this epoch's files are all written
            progress.stopped = {"epoch": progress.epoch, "reason": stop.reason}
            return Outcome(stop.status, finish=stop.finish)
        return Outcome("completed")

    def _epoch(self, epoch: int) -> None:
        parts, progress, cfg = self.parts, self.progress, self.parts.train
        position, self.position = self.position, None
        if position is not None and position.get("epoch") != epoch:
            position = None  # a position of another epoch cannot be continued
        parts.loaders.train_sampler.set_epoch(epoch, skip=position["micro"] if position else 0)
        dist.seed_rank_epoch(cfg.seed, parts.info, epoch)
        start = time.perf_counter()
        train_loss, train_acc, seen = self.steps.train_epoch(parts.model, parts.loaders.train,
                                                             parts.steps_per_epoch, epoch, start=position)
        train_time = time.perf_counter() - start
        result = evaluate(parts.model, parts.loaders.val, parts.normalize, parts.precision, parts.num_classes)
        if not math.isfinite(result.loss):
            raise TrainingDiverged(
                f"validation loss is {result.loss} after epoch {epoch + 1}. {_checkpoints_left(progress)} "
                "Lower train.lr or enable train.clip_grad_norm."
            )
        ips = seen / max(train_time, 1e-9)
        ema_result = None
        if parts.ema is not None:
            ema_result = evaluate(parts.ema.module, parts.loaders.val, parts.normalize, parts.precision,
                                  parts.num_classes)
        # With train.ema.best_follows_ema the average's own metric picks best.pt, and best.pt holds it.
        deciding = ema_result if ema_result is not None and cfg.ema.best_follows_ema else result
        improved = progress.record_epoch(_metric_value(deciding, cfg.best_metric), ips)
        stop = None
        if parts.info.is_main:
            stop = self._end_epoch(result, improved, train_loss, train_acc, ips, start, ema_result,
                                   deciding is ema_result)
        if parts.info.enabled:  # every rank stops together, or none does
            stop = dist.broadcast_object(stop, parts.info)
        if stop is not None:
            raise StopRun(*stop)

    def _end_epoch(self, result: EvalResult, improved: bool, train_loss: float, train_acc: float,
                   ips: float, start: float, ema_result: EvalResult | None = None,
                   best_is_ema: bool = False) -> tuple[str, str, bool] | None:
        """Rank 0: checkpoints, the record, the moment, pictures, summary.json. A StopRun raised by
        a component comes back as (status, reason, finish): the run ends after this epoch."""
        parts, progress = self.parts, self.progress
        record = {
            "event": "epoch", "epoch": progress.epoch, "step": progress.step,
            "train_loss": train_loss, "train_acc": train_acc, **result.as_record(),
            "lr": parts.scheduler.get_last_lr()[0], "epoch_time": time.perf_counter() - start,
            "images_per_sec": ips, "best": improved, "time": time.time(),
        }
        if ema_result is not None:
            record.update({f"ema_{k}": v for k, v in ema_result.as_record().items()
                           if k in ("val_loss", "val_acc1", "val_acc5")})
        if improved:
            if best_is_ema:
                save_best(parts, progress, ema_result, parts.ema.module.state_dict(), weights="ema")
            else:
                save_best(parts, progress, result)
        save_last(parts, progress, record=record)  # holds the record until the sinks have it
        stop = None
        try:
            with preserved_rng():
                self.events.epoch_end(record, parts.train.epochs, improved)
                self.events.draw(progress.epoch, False, parts.raw_model, parts.classes, parts.preprocessing,
                                 parts.samples, progress.step)
        except StopRun as exc:
            stop = (exc.status, exc.reason, exc.finish)
        progress.write()
        return stop


def _metric_value(result: EvalResult, metric: str) -> float:
    value = {"val_acc1": result.acc1, "val_acc5": result.acc5, "val_loss": result.loss}[metric]
    return result.acc1 if value is None else value  # acc5 with fewer than 5 classes


def model_payload(parts: RunParts, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a model file holds besides optimizer state: weights, classes, preprocessing, model spec."""
    return {
        "model": parts.raw_model.state_dict() if state is None else state,
        "classes": parts.classes,
        "preprocessing": parts.preprocessing.to_dict(),
        "model_spec": parts.resolved.model.to_dict(),
    }


def save_best(parts: RunParts, progress: RunProgress, result: EvalResult, state: dict[str, Any] | None = None,
              weights: str = "raw") -> None:
    """best.pt: the model's weights (or the EMA's, ``weights="ema"``) and the metric that chose them."""
    payload = model_payload(parts, state)
    payload.update(epoch=progress.epoch, metric=progress.best_metric, value=progress.best_value,
                   val_acc1=result.acc1, val_loss=result.loss, weights=weights)
    atomic_save(payload, progress.run_dir / "checkpoints" / "best.pt")


def save_last(parts: RunParts, progress: RunProgress, position: dict[str, Any] | None = None,
              record: dict[str, Any] | None = None) -> None:
    """The full training state: model, optimizer, schedule, scaler, counters and RNG states.

    At an epoch end it also holds that epoch's ``record``; inside an epoch (a recovery
    checkpoint) the ``position`` to continue from: batches done and the epoch's running sums.
    """
    scaler = parts.scaler
    atomic_save(
        {
            "format": 1,
            "position": position,
            "record": record,
            "model": parts.raw_model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            **progress.checkpoint_state(),
            "ema": parts.ema.state_dict() if parts.ema is not None else None,
            "rng": rng_state(),
            "classes": parts.classes,
        },
        progress.run_dir / "checkpoints" / "last.pt",
    )


def _progress_bar(total: int, description: str, enabled: bool, initial: int = 0):
    from tqdm import tqdm

    # disable=None: tqdm turns itself off when stderr is not a terminal (CI logs stay clean).
    return tqdm(total=total, desc=description, leave=False, dynamic_ncols=True, initial=initial,
                disable=None if enabled else True, file=sys.stderr)
