"""The training loop: builds the registered components of a spec and trains, evaluates, saves.

The hot loop never waits on the host: loss and accuracy are summed on the device and read once
per logging interval (``train.log_every_steps``) and once per epoch.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitcore.components import (
    AugmentationContext,
    DataContext,
    MetricSink,
    ModelContext,
    SinkContext,
    VisualizerContext,
)
from vitcore.engine import distributed as dist
from vitcore.engine.checkpoint import (
    atomic_save,
    load_checkpoint,
    restore_rng_state,
    rng_state,
)
from vitcore.engine.data import DeviceNormalize, build_loaders, first_samples
from vitcore.engine.device import resolve_precision, select_device
from vitcore.engine.evaluate import EvalResult, evaluate
from vitcore.engine.optim import build_optimizer, build_scheduler, param_groups
from vitcore.errors import TrainingDiverged, VitcoreError
from vitcore.exporting import run_exporters
from vitcore.runs import (
    create_version_dir,
    environment,
    now_iso,
    read_json,
    write_json_atomic,
)
from vitcore.spec import ResolvedSpec

HIGHER_IS_BETTER = {"val_acc1": True, "val_acc5": True, "val_loss": False}


def cache_dir() -> Path:
    return Path(os.environ.get("VITCORE_CACHE", Path.home() / ".cache" / "vitcore"))


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


@dataclass
class _State:
    """What survives an epoch and goes into last.pt."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_value: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    images_per_sec: list[float] = field(default_factory=list)


class Trainer:
    """One training run (or its resumption) of a resolved spec."""

    def __init__(self, resolved: ResolvedSpec, run_dir: Path | None = None) -> None:
        self.resolved = resolved
        self.cfg = resolved.train
        self.resume_dir = run_dir
        self.info = dist.from_environment()
        self.device = select_device(self.cfg.device, self.info.local_rank)
        self.precision = resolve_precision(self.cfg.precision, self.device)
        self.sinks: list[MetricSink] = []
        self.state = _State()
        self.started = time.perf_counter()
        self.lineage: dict[str, Any] | None = None
        self.auto_batch: dict[str, Any] | None = None  # how batch_size auto was decided
        self.earlier_wall_time = 0.0  # seconds spent before a resume

    # -- set-up ----------------------------------------------------------------------------

    def _prepare_run_dir(self) -> Path:
        if self.resume_dir is not None:
            return self.resume_dir
        path = None
        if self.info.is_main:
            spec = self.resolved.spec
            path = create_version_dir(Path(spec.output_dir), spec.name)
        return Path(dist.broadcast_object(str(path) if path else None, self.info))

    def _load_data(self):
        provider = self.resolved.data.instantiate()
        ctx = DataContext(cache_dir=cache_dir(), seed=self.cfg.seed)
        # Rank 0 first: a provider that writes a cache (shapes) does it once, the others reuse it.
        splits = dist.leader_first(self.info, lambda: provider.load(ctx))
        if len(splits.classes) < 2:
            raise VitcoreError(f"data: found {len(splits.classes)} class(es); a classifier needs at least 2")
        return splits

    def _build_model(self, classes: list[str]):
        builder = self.resolved.model.instantiate()
        source = self.resolved.spec.model.init_from
        resuming = self.resume_dir is not None and (self.resume_dir / "checkpoints" / "last.pt").is_file()
        ctx = ModelContext(num_classes=len(classes), class_names=classes, load_pretrained=source is None)
        model = builder.build(ctx)
        if source is not None and not resuming:  # on resume, last.pt already holds the weights
            from vitcore.engine.init_from import init_from

            self.lineage = init_from(model, source, classes)
        return builder, model, builder.preprocessing()

    def _transforms(self, pre, num_classes: int):
        """(loader's train transform, eval transform, batch transforms, device augmentation steps).

        The steps are None unless ``train.augment`` is 'device'; then the loader only cuts the
        fixed-size square, and an augmentation without a device version is refused here, before
        the run directory exists.
        """
        from vitcore.builtin.transforms import eval_transform, train_transform

        ctx = AugmentationContext(preprocessing=pre, num_classes=num_classes)
        augs = [a.instantiate() for a in self.resolved.augmentations]
        batch = [f for f in (a.batch_transform(ctx) for a in augs) if f is not None]
        if self.cfg.augment == "device":
            from vitcore.engine.device_augment import device_steps, loader_transform

            steps = device_steps(augs, ctx, [a.type for a in self.resolved.augmentations])
            return loader_transform(self.cfg.decode, pre), eval_transform(pre), batch, steps
        return train_transform(augs, ctx), eval_transform(pre), batch, None

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> RunResult:
        dist.init_process_group(self.info, self.device)
        previous = _interrupt_on_sigterm()
        try:
            return self._run()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            for sink in self.sinks:
                sink.close()
            dist.destroy_process_group()

    def _run(self) -> RunResult:
        cfg = self.cfg
        seed_everything(cfg.seed, cfg.deterministic)
        splits = self._load_data()
        classes = list(splits.classes)
        builder, model, pre = self._build_model(classes)
        train_tf, eval_tf, batch_transforms, device_steps = self._transforms(pre, len(classes))
        if cfg.batch_size == "auto":
            cfg.batch_size = self._auto_batch_size(builder, model, pre, len(classes), len(splits.train))
        loaders = build_loaders(
            splits.train, splits.val, train_tf, eval_tf, cfg.batch_size, self.info, self.device,
            cfg.seed, cfg.num_workers, decode=cfg.decode, cache_root=cache_dir(), preprocessing=pre,
        )
        steps_per_epoch = len(loaders.train) // cfg.grad_accum_steps
        if cfg.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
        if steps_per_epoch < 1:
            raise VitcoreError(
                f"train.grad_accum_steps: {cfg.grad_accum_steps} micro-batches per step but only "
                f"{len(loaders.train)} per epoch; lower it or train.batch_size"
            )

        # Only now, with data, model and loaders in hand: bad input never leaves an empty version.
        run_dir = self._prepare_run_dir()
        self.run_dir = run_dir
        raw_model = model.to(self.device)
        if cfg.channels_last:
            raw_model = raw_model.to(memory_format=torch.channels_last)
        optimizer = self._make_optimizer(builder, raw_model)
        scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
        scaler = torch.amp.GradScaler(self.device.type) if self.precision.use_scaler else None

        self._maybe_resume(run_dir, raw_model, optimizer, scheduler, scaler)
        # Also a resume when the kill came before the first checkpoint: the sinks then drop
        # everything logged (start_step 0) instead of appending to the killed attempt's records.
        resumed = self.resume_dir is not None
        model = torch.compile(raw_model) if cfg.compile else raw_model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)

        normalize = DeviceNormalize(pre, self.device, cfg.channels_last)
        # What train_epoch applies to each batch: with augment 'device' the augmentations come first.
        train_input = normalize
        if device_steps is not None:
            from vitcore.engine.device_augment import DeviceAugment

            train_input = DeviceAugment(device_steps, pre, normalize, self.device)
        samples = first_samples(splits.val, eval_tf, 8)
        n_params = sum(p.numel() for p in raw_model.parameters())
        summary = self._start_summary(run_dir, classes, pre, n_params, resumed, splits.info)
        if self.info.is_main and not resumed:
            self._write_model_summary(raw_model, pre, summary)
        if self.info.is_main:
            self._open_sinks(run_dir, resumed, raw_model, normalize, samples)

        status = "failed"
        try:
            outcome = self._epochs(model, raw_model, loaders, normalize, optimizer, scheduler, scaler,
                                   batch_transforms, steps_per_epoch, classes, pre, samples, summary,
                                   train_input=train_input)
            if self.info.is_main:  # pictures and exports belong to the run: their failure fails it
                self._finish(raw_model, classes, pre, samples, summary)
            status = outcome
        except TrainingDiverged:
            status = "diverged"
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception as exc:
            summary["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if self.info.is_main:
                summary.update(status=status, finished=now_iso(), **self._progress_fields())
                write_json_atomic(run_dir / "summary.json", summary)
        if self.info.is_main and status in ("completed", "early_stopped"):
            from vitcore.plugins import get_host

            get_host().call("run_finished", run_dir=run_dir, summary=summary)
        dist.patient_barrier(self.info)  # rank 0 may have spent long on pictures and exports
        return RunResult(run_dir, summary)

    def _make_optimizer(self, builder, model: torch.nn.Module) -> torch.optim.Optimizer:
        cfg = self.cfg
        groups = builder.param_groups(model, cfg.weight_decay, cfg.lr) or param_groups(
            model, cfg.weight_decay, builder.no_weight_decay(model)
        )
        return build_optimizer(groups, cfg, self.device)

    def _auto_batch_size(self, builder, model, pre, num_classes: int, train_size: int) -> int:
        """``batch_size: auto``: probe device memory (CUDA) and agree on the smallest over ranks.

        The number chosen is written into the run's spec.json, so a resume or a repeat of the
        run uses the same batch without probing again.
        """
        from vitcore.engine import batch_size as auto

        if self.device.type != "cuda":
            chosen = auto.cap_to_data(auto.HOST_AUTO_BATCH * self.info.world_size, self.info.world_size,
                                      train_size)
            self.auto_batch = {"chosen": chosen, "probed": None, "reason": f"no probing on {self.device.type}"}
            return chosen
        probed = auto.probe_batch_size(
            model, lambda copy: self._make_optimizer(builder, copy),
            lambda: self.precision.autocast(self.device), self.device, pre.image_size, num_classes,
        )
        probed = dist.min_over_ranks(probed, self.device)
        if probed < 1:
            raise VitcoreError(
                f"train.batch_size: auto found that not even one image fits in the memory of {self.device}; "
                "use a smaller model or image size, precision bf16, or another device"
            )
        chosen = auto.with_margin(probed, self.info.world_size, train_size)
        self.auto_batch = {"chosen": chosen, "probed": probed, "reason": "largest step that fits, times "
                           f"{auto.SAFETY_MARGIN} for what the probe does not see"}
        if self.info.is_main:
            print(f"train.batch_size auto: {chosen} ({probed} per process fit on {self.device})", flush=True)
        return chosen

    def _maybe_resume(self, run_dir, model, optimizer, scheduler, scaler) -> None:
        last = run_dir / "checkpoints" / "last.pt"
        if self.resume_dir is None or not last.is_file():
            return
        ckpt = load_checkpoint(last)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        restore_rng_state(ckpt["rng"])
        self.state = _State(
            epoch=ckpt["epoch"], step=ckpt["step"], best_value=ckpt["best_value"],
            best_epoch=ckpt["best_epoch"], stale_epochs=ckpt["stale_epochs"],
            images_per_sec=list(ckpt.get("images_per_sec", [])),
        )

    def _start_summary(self, run_dir, classes, pre, n_params, resumed, data_info) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        if self.resume_dir is not None and (run_dir / "summary.json").is_file():
            summary = read_json(run_dir / "summary.json")
        spec = self.resolved.spec
        summary.update(
            name=spec.name,
            version=run_dir.name,
            run_dir=str(run_dir),
            status="running",
            classes=classes,
            preprocessing=pre.to_dict(),
            parameters=n_params,
            device=str(self.device),
            precision=self.precision.name,
            world_size=self.info.world_size,
            best_metric=self.cfg.best_metric,
            data=data_info,
        )
        summary.setdefault("started", now_iso())
        if self.lineage is not None:
            summary["lineage"] = self.lineage
        if self.auto_batch is not None:
            summary["auto_batch_size"] = self.auto_batch
        self.earlier_wall_time = float(summary.get("wall_time_s") or 0.0)
        if resumed:
            summary.setdefault("resumed", []).append({"at": now_iso(), "from_epoch": self.state.epoch})
        if self.info.is_main:
            if self.resume_dir is None:
                write_json_atomic(run_dir / "spec.json", self.resolved.to_dict())
            plugins = [i.to_dict() for i in _plugin_infos()]
            write_json_atomic(run_dir / "env.json", environment(str(self.device), plugins))
            write_json_atomic(run_dir / "summary.json", summary)
        return summary

    def _write_model_summary(self, model, pre, summary: dict[str, Any]) -> None:
        """The architecture table (shapes, parameters, FLOPs) saved with the run."""
        from vitcore.model_summary import format_table, summarize

        try:
            table = summarize(model, pre.image_size)
        except Exception as exc:  # noqa: BLE001 - a model the counter cannot trace still trains
            warnings.warn(f"model summary skipped: {type(exc).__name__}: {exc}", stacklevel=2)
            return
        write_json_atomic(self.run_dir / "model_summary.json", table)
        (self.run_dir / "model_summary.txt").write_text(format_table(table) + "\n", encoding="utf-8")
        summary["flops_per_image"] = table["flops_per_image"]

    def _open_sinks(self, run_dir, resumed, model, normalize, samples) -> None:
        ctx = SinkContext(run_dir=run_dir, spec=self.resolved.to_dict(), resumed=resumed,
                          start_step=self.state.step)
        for entry in self.resolved.sinks:
            sink = entry.instantiate()
            sink.open(ctx)
            self.sinks.append(sink)
        if not resumed and samples:
            example = normalize(torch.stack([s[0] for s in samples[:2]]))
            for sink in self.sinks:
                sink.log_graph(model, example)

    def _log(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.log(record)

    # -- epochs and steps ------------------------------------------------------------------

    def _epochs(self, model, raw_model, loaders, normalize, optimizer, scheduler, scaler,
                batch_transforms, steps_per_epoch, classes, pre, samples, summary, train_input=None) -> str:
        """``train_input`` prepares training batches (``DeviceAugment`` with augment 'device');
        ``normalize`` the validation ones."""
        cfg = self.cfg
        train_input = normalize if train_input is None else train_input
        num_classes = len(classes)
        for epoch in range(self.state.epoch, cfg.epochs):
            loaders.train_sampler.set_epoch(epoch)
            dist.seed_rank_epoch(cfg.seed, self.info, epoch)
            start = time.perf_counter()
            train_loss, train_acc, seen = self.train_epoch(
                model, loaders.train, train_input, optimizer, scheduler, scaler, batch_transforms,
                steps_per_epoch, epoch,
            )
            train_time = time.perf_counter() - start
            result = evaluate(model, loaders.val, normalize, self.precision, num_classes)
            if not math.isfinite(result.loss):
                raise TrainingDiverged(
                    f"validation loss is {result.loss} after epoch {epoch + 1}; the last good checkpoint "
                    f"is kept in {self.run_dir / 'checkpoints'}. Lower train.lr or enable train.clip_grad_norm."
                )
            improved = self._update_best(result)
            self.state.epoch = epoch + 1
            ips = seen / max(train_time, 1e-9)
            self.state.images_per_sec.append(ips)
            if self.info.is_main:
                if improved:
                    self._save_best(raw_model, classes, pre, epoch + 1, result)
                self._save_last(raw_model, optimizer, scheduler, scaler, classes)
                record = {
                    "event": "epoch", "epoch": epoch + 1, "step": self.state.step,
                    "train_loss": train_loss, "train_acc": train_acc, **result.as_record(),
                    "lr": scheduler.get_last_lr()[0], "epoch_time": time.perf_counter() - start,
                    "images_per_sec": ips, "best": improved, "time": time.time(),
                }
                self._log(record)
                if any(v.component.every_epoch for v in self.resolved.visualizers):
                    self._visualize(raw_model, classes, pre, samples, epoch + 1, final=False)
                summary.update(status="running", **self._progress_fields())
                write_json_atomic(self.run_dir / "summary.json", summary)
            if cfg.early_stopping_patience and self.state.stale_epochs >= cfg.early_stopping_patience:
                return "early_stopped"
        return "completed"

    def train_epoch(self, model, loader, normalize, optimizer, scheduler, scaler, batch_transforms,
                    steps_per_epoch, epoch) -> tuple[float, float, int]:
        """One epoch over ``loader`` (any iterable of uint8 image and label batches): the hot loop.

        ``normalize`` turns each uint8 batch into the model's float input on the device: a
        ``DeviceNormalize``, or a ``DeviceAugment`` (augment 'device') that augments first.
        Returns (mean loss, accuracy, images seen). Public so benchmarks can time exactly this
        loop against a bare PyTorch loop on the same batches.
        """
        cfg = self.cfg
        device = self.device
        model.train()
        accum = cfg.grad_accum_steps
        criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        zero = lambda: torch.zeros((), dtype=torch.float64, device=device)  # noqa: E731
        epoch_loss, epoch_correct, window_loss, window_correct = zero(), zero(), zero(), zero()
        epoch_count = window_count = 0
        window_start = time.perf_counter()
        bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", self.info.is_main)
        micro = step_in_epoch = 0
        optimizer.zero_grad(set_to_none=True)
        for images, targets in loader:
            images = normalize(images)
            targets = targets.to(device, non_blocking=True)
            hard = targets
            if batch_transforms:
                transform = batch_transforms[random.randrange(len(batch_transforms))]
                images, targets = transform(images, targets)
            micro += 1
            syncing = micro % accum == 0
            no_sync = getattr(model, "no_sync", None)
            with (no_sync() if no_sync is not None and not syncing else nullcontext()):
                with self.precision.autocast(device):
                    logits = model(images)
                    loss = criterion(logits, targets)
                scaled = loss / accum
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
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
            lr = scheduler.get_last_lr()[0]  # the rate this step used
            self._optimizer_step(model, optimizer, scaler)
            scheduler.step()
            self.state.step += 1
            step_in_epoch += 1
            bar.update(1)
            if self.state.step % cfg.log_every_steps == 0:
                loss_value, acc_value = self._read_window(window_loss, window_correct, window_count)
                now = time.perf_counter()
                ips = window_count * self.info.world_size / max(now - window_start, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.4f}", acc=f"{acc_value:.3f}", img_s=f"{ips:.0f}")
                if self.info.is_main:
                    self._log({"event": "train", "epoch": epoch + 1, "step": self.state.step,
                               "loss": loss_value, "acc": acc_value, "lr": lr,
                               "images_per_sec": ips, "time": time.time()})
                window_loss.zero_()
                window_correct.zero_()
                window_count, window_start = 0, now
            if step_in_epoch >= steps_per_epoch:
                break
        bar.close()
        loss_value, acc_value = self._read_window(epoch_loss, epoch_correct, epoch_count)
        return loss_value, acc_value, epoch_count * self.info.world_size

    def _optimizer_step(self, model, optimizer, scaler) -> None:
        if self.cfg.clip_grad_norm is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.clip_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def _read_window(self, loss_sum: torch.Tensor, correct: torch.Tensor, count: int) -> tuple[float, float]:
        """The one host sync per interval: reduce across ranks, read, check for divergence."""
        packed = torch.stack([loss_sum, correct.double(),
                              torch.tensor(float(count), dtype=torch.float64, device=loss_sum.device)])
        dist.all_reduce_sum(packed)
        total_loss, total_correct, total = packed.tolist()
        loss_value = total_loss / max(total, 1.0)
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"training loss became {loss_value} at step {self.state.step}; stopped. The last good "
                f"checkpoint is kept in {self.run_dir / 'checkpoints'}. Lower train.lr, enable "
                "train.clip_grad_norm or use precision bf16/fp32."
            )
        return loss_value, total_correct / max(total, 1.0)

    # -- best/last, visualizers, exports ----------------------------------------------------

    def _update_best(self, result: EvalResult) -> bool:
        metric = self.cfg.best_metric
        value = {"val_acc1": result.acc1, "val_acc5": result.acc5, "val_loss": result.loss}[metric]
        if value is None:  # acc5 with fewer than 5 classes
            value = result.acc1
        best = self.state.best_value
        higher = HIGHER_IS_BETTER[metric]
        if best is None or (value > best if higher else value < best):
            self.state.best_value = value
            self.state.best_epoch = self.state.epoch + 1
            self.state.stale_epochs = 0
            return True
        self.state.stale_epochs += 1
        return False

    def _model_payload(self, model, classes, pre) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "classes": classes,
            "preprocessing": pre.to_dict(),
            "model_spec": self.resolved.model.to_dict(),
        }

    def _save_best(self, model, classes, pre, epoch: int, result: EvalResult) -> None:
        payload = self._model_payload(model, classes, pre)
        payload.update(epoch=epoch, metric=self.cfg.best_metric, value=self.state.best_value,
                       val_acc1=result.acc1, val_loss=result.loss)
        atomic_save(payload, self.run_dir / "checkpoints" / "best.pt")

    def _save_last(self, model, optimizer, scheduler, scaler, classes) -> None:
        atomic_save(
            {
                "format": 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": self.state.epoch,
                "step": self.state.step,
                "best_value": self.state.best_value,
                "best_epoch": self.state.best_epoch,
                "stale_epochs": self.state.stale_epochs,
                "images_per_sec": self.state.images_per_sec,
                "rng": rng_state(),
                "classes": classes,
            },
            self.run_dir / "checkpoints" / "last.pt",
        )

    def _progress_fields(self) -> dict[str, Any]:
        ips = self.state.images_per_sec
        return {
            "epochs_completed": self.state.epoch,
            "steps": self.state.step,
            "best_epoch": self.state.best_epoch,
            "best_value": self.state.best_value,
            "images_per_sec": sum(ips) / len(ips) if ips else None,
            "wall_time_s": round(self.earlier_wall_time + time.perf_counter() - self.started, 3),
        }

    def _visualize(self, model, classes, pre, samples, epoch, final: bool) -> list[Path]:
        from vitcore.metrics_file import read_records

        ctx = VisualizerContext(
            run_dir=self.run_dir, records=read_records(self.run_dir), classes=classes, model=model,
            preprocessing=pre, samples=samples, epoch=epoch, final=final,
            log_histogram=lambda tag, values: [s.log_histogram(tag, values, self.state.step) for s in self.sinks],
        )
        paths: list[Path] = []
        model.eval()
        for entry in self.resolved.visualizers:
            visualizer = entry.instantiate()
            if final or visualizer.every_epoch:
                paths.extend(visualizer.render(ctx))
        for path in paths:
            for sink in self.sinks:
                sink.log_image(f"viz/{path.stem}", path, self.state.step)
        return paths

    def _finish(self, raw_model, classes, pre, samples, summary) -> None:
        best = self.run_dir / "checkpoints" / "best.pt"
        if best.is_file():
            raw_model.load_state_dict(load_checkpoint(best)["model"])
        plots = self._visualize(raw_model, classes, pre, samples, self.state.epoch, final=True)
        exports = run_exporters(self.resolved.exporters, self.run_dir, raw_model, classes, pre,
                                self.resolved.to_dict(), samples)
        summary["plots"] = [str(p) for p in plots]
        summary["exports"] = [str(p) for p in exports]
        for sink in self.sinks:
            sink.close()
        self.sinks = []


def _interrupt_on_sigterm():
    """SIGTERM (a scheduler or torchrun stopping us) ends the run like Ctrl-C: status interrupted."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _progress(total: int, description: str, enabled: bool):
    from tqdm import tqdm

    # disable=None: tqdm turns itself off when stderr is not a terminal (CI logs stay clean).
    return tqdm(total=total, desc=description, leave=False, dynamic_ncols=True,
                disable=None if enabled else True, file=sys.stderr)


def _plugin_infos():
    from vitcore.plugins import get_host

    return get_host().plugins(include_builtin=False)


def train(resolved: ResolvedSpec, run_dir: Path | None = None) -> RunResult:
    """Train a resolved spec; with ``run_dir``, resume that run from its last checkpoint."""
    return Trainer(resolved, run_dir).run()
