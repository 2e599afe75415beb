"""Set-up: everything a run needs, built once, in order, and handed on as one frozen ``RunParts``.

Order matters: data, model, transforms and loaders are built (and every user error raised)
before the version folder exists, so bad input never leaves an empty ``v<N>``.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vitcore.components import AugmentationContext, DataSplits, ModelBuilder, ModelContext, Preprocessing
from vitcore.engine import distributed as dist
from vitcore.engine.data import DeviceNormalize, Loaders, build_loaders, first_samples
from vitcore.engine.device import Precision
from vitcore.engine.optim import build_optimizer, build_scheduler, param_groups
from vitcore.errors import SpecError, VitcoreError
from vitcore.spec import ResolvedSpec


@dataclass(frozen=True)
class RunParts:
    """The built parts of one run. Frozen: the fit loop uses them, never replaces them."""

    #: The spec as this run uses it (``batch_size: auto`` replaced by the number chosen).
    resolved: ResolvedSpec
    info: dist.DistInfo
    device: torch.device
    precision: Precision
    splits: DataSplits
    classes: list[str]
    builder: ModelBuilder
    preprocessing: Preprocessing
    #: The plain module (checkpoints, pictures, exports) and what the loop calls (compiled, DDP).
    raw_model: torch.nn.Module
    model: torch.nn.Module
    loaders: Loaders
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    #: uint8 batch -> model input: validation (``normalize``) and training (``train_input``, which
    #: augments on the device first with ``train.augment: device``).
    normalize: DeviceNormalize
    train_input: Callable[[torch.Tensor], torch.Tensor]
    batch_transforms: list[Callable]
    #: A few validation images for pictures and export checks.
    samples: list[tuple[torch.Tensor, int]]
    run_dir: Path
    resumed: bool
    #: Counters of the last.pt this run resumes from (None: a fresh start).
    checkpoint: dict[str, Any] | None
    lineage: dict[str, Any] | None
    auto_batch: dict[str, Any] | None
    #: Fields ``vitcore resume --set`` changed: ``{field: [old, new]}``.
    changes: dict[str, list]
    #: The moving average of the weights (``train.ema``) and the teacher (``distill``), or None.
    ema: Any = None
    teacher: Any = None

    @property
    def train(self):
        return self.resolved.train

    @property
    def num_classes(self) -> int:
        return len(self.classes)


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


def make_optimizer(builder: ModelBuilder, model: torch.nn.Module, resolved: ResolvedSpec,
                   device: torch.device) -> torch.optim.Optimizer:
    """The builder's own parameter groups (layer decay, frozen blocks) or the engine's default ones."""
    cfg = resolved.train
    groups = builder.param_groups(model, cfg.weight_decay, cfg.lr) or param_groups(
        model, cfg.weight_decay, builder.no_weight_decay(model)
    )
    return build_optimizer(groups, cfg, device)


def build_run(resolved: ResolvedSpec, info: dist.DistInfo, device: torch.device, precision: Precision,
              resume_dir: Path | None, claim: Callable[[Path], None] = lambda path: None,
              changes: dict[str, list] | None = None) -> RunParts:
    """Build every part of a run (or its resumption from ``resume_dir``), in order.

    ``claim(run_dir)`` is called on rank 0 as soon as a new version folder exists (the trainer
    locks it there)."""
    from vitcore.engine.checkpoint import load_checkpoint, restore_rng_state
    from vitcore.paths import cache_dir

    from vitcore.preflight import naming_source, preflight

    cfg = resolved.train
    seed_everything(cfg.seed, cfg.deterministic)
    last = resume_dir / "checkpoints" / "last.pt" if resume_dir is not None else None
    resuming_weights = last is not None and last.is_file()
    with naming_source(resolved.source):
        splits = _load_splits(resolved, info)
        classes = list(splits.classes)
        builder, model, pre, lineage = _build_model(resolved, classes, resuming_weights)
        teacher = None
        if resolved.spec.distill is not None:  # before the run folder: a wrong teacher is the user's error
            from vitcore.engine.distill import load_teacher

            teacher = load_teacher(resolved.spec.distill.teacher, classes, pre, device)
    train_tf, eval_tf, batch_transforms, device_steps = _transforms(resolved, pre, len(classes))

    auto_batch = None
    if cfg.batch_size == "auto":
        chosen, auto_batch = choose_batch_size(resolved, builder, model, pre, len(classes), len(splits.train),
                                              info, device, precision)
        resolved = with_batch_size(resolved, chosen)
        cfg = resolved.train
    # Every cross-field rule `vitcore validate` checks, now with the data and model in hand, before
    # the loaders (a refused spec never builds the decoded cache) and before any run folder exists.
    preflight(resolved, splits=splits, preprocessing=pre, model=model)
    loaders = build_loaders(
        splits.train, splits.val, train_tf, eval_tf, cfg.batch_size, info, device, cfg.seed,
        cfg.num_workers, decode=cfg.decode, cache_root=cache_dir(), preprocessing=pre,
    )
    steps_per_epoch = len(loaders.train) // cfg.grad_accum_steps
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    if steps_per_epoch < 1:  # preflight refuses this; kept for specs built without it
        raise SpecError(
            f"train.grad_accum_steps: {cfg.grad_accum_steps} micro-batches per step but only "
            f"{len(loaders.train)} per epoch; lower it or train.batch_size"
        )

    # Only now, with data, model and loaders in hand: bad input never leaves an empty version.
    run_dir = resume_dir if resume_dir is not None else _new_version_dir(resolved, info, claim)
    raw_model = model.to(device)
    if cfg.channels_last:
        raw_model = raw_model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(builder, raw_model, resolved, device)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if precision.use_scaler else None

    ema = None
    if cfg.ema is not None:
        from vitcore.engine.ema import WeightEma

        ema = WeightEma(raw_model, cfg.ema.decay, cfg.ema.warmup)
    checkpoint = None
    if resuming_weights:
        checkpoint = load_checkpoint(last)
        raw_model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        restore_rng_state(checkpoint["rng"])
        if ema is not None and checkpoint.get("ema"):
            ema.load_state_dict(checkpoint["ema"])
        if changes:
            from vitcore.engine.resume_changes import apply_to_restored

            apply_to_restored(optimizer, scheduler, changes)

    compiled = torch.compile(raw_model) if cfg.compile else raw_model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        compiled = DistributedDataParallel(compiled, device_ids=[device.index] if device.type == "cuda" else None)
    normalize = DeviceNormalize(pre, device, cfg.channels_last)
    train_input: Callable = normalize
    if device_steps is not None:
        from vitcore.engine.device_augment import DeviceAugment

        train_input = DeviceAugment(device_steps, pre, normalize, device)

    return RunParts(
        resolved=resolved, info=info, device=device, precision=precision, splits=splits, classes=classes,
        builder=builder, preprocessing=pre, raw_model=raw_model, model=compiled, loaders=loaders,
        steps_per_epoch=steps_per_epoch, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
        normalize=normalize, train_input=train_input, batch_transforms=batch_transforms,
        samples=list(first_samples(splits.val, eval_tf, 8)), run_dir=run_dir,
        # Also a resume when the kill came before the first checkpoint: the sinks then drop
        # everything logged (start step 0) instead of appending to the killed attempt's records.
        resumed=resume_dir is not None, checkpoint=checkpoint, lineage=lineage, auto_batch=auto_batch,
        changes=dict(changes or {}), ema=ema, teacher=teacher,
    )


def with_batch_size(resolved: ResolvedSpec, batch_size: int) -> ResolvedSpec:
    """A copy of ``resolved`` with ``train.batch_size`` set (the caller's spec is left alone)."""
    train = resolved.spec.train.model_copy(update={"batch_size": batch_size})
    return dataclasses.replace(resolved, spec=resolved.spec.model_copy(update={"train": train}))


def _load_splits(resolved: ResolvedSpec, info: dist.DistInfo) -> DataSplits:
    from vitcore.data_loading import load_splits

    # Rank 0 first: a provider that writes a cache (shapes) does it once, the others reuse it.
    return load_splits(resolved, dist_info=info)


def _build_model(resolved: ResolvedSpec, classes: list[str], resuming: bool):
    builder = resolved.model.instantiate()
    source = resolved.spec.model.init_from
    ctx = ModelContext(num_classes=len(classes), class_names=classes, load_pretrained=source is None,
                       spec_dir=resolved.base_dir)
    model = builder.build(ctx)
    lineage = None
    if source is not None and not resuming:  # on resume, last.pt already holds the weights
        from vitcore.engine.init_from import init_from

        lineage = init_from(model, source, classes)
    return builder, model, builder.preprocessing(), lineage


def _transforms(resolved: ResolvedSpec, pre: Preprocessing, num_classes: int):
    """(loader's train transform, eval transform, batch transforms, device augmentation steps).

    The steps are None unless ``train.augment`` is 'device'; then the loader only cuts the
    fixed-size square and each augmentation runs batched on the device.
    """
    from vitcore.engine.transforms import eval_transform, train_transform

    cfg = resolved.train
    ctx = AugmentationContext(preprocessing=pre, num_classes=num_classes)
    augs = [a.instantiate() for a in resolved.augmentations]
    batch = [f for f in (a.batch_transform(ctx) for a in augs) if f is not None]
    if cfg.augment == "device":
        from vitcore.engine.device_augment import device_steps, loader_transform

        steps = device_steps(augs, ctx, [a.type for a in resolved.augmentations])
        return loader_transform(cfg.decode, pre), eval_transform(pre), batch, steps
    return train_transform(augs, ctx), eval_transform(pre), batch, None


def choose_batch_size(resolved, builder, model, pre, num_classes: int, train_size: int, info, device,
                     precision) -> tuple[int, dict[str, Any]]:
    """``batch_size: auto``: probe device memory (CUDA) and agree on the smallest over ranks.

    The number chosen is written into the run's spec.json, so a resume or a repeat of the run
    uses the same batch without probing again.
    """
    from vitcore.engine import batch_size as auto

    if device.type != "cuda":
        chosen = auto.cap_to_data(auto.HOST_AUTO_BATCH * info.world_size, info.world_size, train_size)
        return chosen, {"chosen": chosen, "probed": None, "reason": f"no probing on {device.type}"}
    probed = auto.probe_batch_size(
        model, lambda copy: make_optimizer(builder, copy, resolved, device),
        lambda: precision.autocast(device), device, pre.image_size, num_classes,
    )
    probed = dist.min_over_ranks(probed, device)
    if probed < 1:
        raise VitcoreError(
            f"train.batch_size: auto found that not even one image fits in the memory of {device}; "
            "use a smaller model or image size, precision bf16, or another device"
        )
    chosen = auto.with_margin(probed, info.world_size, train_size)
    if info.is_main:
        print(f"train.batch_size auto: {chosen} ({probed} per process fit on {device})", flush=True)
    return chosen, {"chosen": chosen, "probed": probed,
                    "reason": f"largest step that fits, times {auto.SAFETY_MARGIN} for what the probe does not see"}


def _new_version_dir(resolved: ResolvedSpec, info: dist.DistInfo, claim: Callable[[Path], None]) -> Path:
    from vitcore.runs import create_version_dir

    path = None
    if info.is_main:
        spec = resolved.spec
        path = create_version_dir(Path(spec.output_dir), spec.name)
        claim(path)
    return Path(dist.broadcast_object(str(path) if path else None, info))
