"""Tiny real inputs: image folders, specs, the CLI in a child, and what the contract checks feed
components (coloured pictures, metric records shaped like the engine's, a 1-block ViT entry).

Cheap to import (no torch at module level), so a plugin's own test suite can use it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

#: Mean colours of the classes ``make_image_folder`` draws.
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (220, 220, 30),
    "magenta": (220, 30, 220),
}

#: The model entry of a spec for the smallest torchvision ViT with every part (one 2-head block
#: on 4x4 patches of 8 px): what the checks build when they need a model.
TINY_VIT: dict[str, Any] = {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 1,
                            "embed_dim": 32, "num_heads": 2}


def make_image_folder(root: Path, classes: Sequence[str] = ("red", "green", "blue"), per_class: int = 6,
                      size: int = 32, seed: int = 0) -> Path:
    """Real PNG files ``root/<class>/<i>.png`` whose class is their dominant colour: learnable in a
    few steps, so a test can assert that training works."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.normal(COLOURS[name], 25, size=(size, size, 3)).clip(0, 255).astype("uint8")
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def tiny_spec(tmp_path: Path, **train: Any) -> dict[str, Any]:
    """A spec that trains a 1-block ViT on ``make_image_folder`` data in a couple of seconds."""
    data = make_image_folder(tmp_path / "data")
    return {
        "name": "tiny",
        "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(data), "val_fraction": 0.34},
        "model": dict(TINY_VIT),
        "augmentations": [],
        "train": {"epochs": 2, "batch_size": 4, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0,
                  "log_every_steps": 1, **train},
        "sinks": [{"type": "tensorboard", "log_graph": False}],
    }


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(json.dumps(spec, indent=2))
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m vitcore ARGS`` in a real child process (fresh plugin loading, real exit codes)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vitcore", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def colour_images(count: int, height: int, width: int | None = None, seed: int = 0) -> "torch.Tensor":
    """``(count, 3, H, W)`` uint8 pictures of noisy class colours, like ``make_image_folder``'s."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    means = torch.tensor(list(COLOURS.values()), dtype=torch.float32)
    picked = means[torch.arange(count) % len(means)].view(count, 3, 1, 1)
    noise = torch.randn(count, 3, height, width or height, generator=generator) * 25
    return (picked + noise).clamp(0, 255).to(torch.uint8)


def metric_records(classes: Sequence[str], epochs: int = 2, steps_per_epoch: int = 2) -> list[dict[str, Any]]:
    """Records shaped like the engine's: ``train`` ones per logging interval, one ``epoch`` each
    epoch (with lists: per-class accuracy, confusion matrix), plus a key no sink knows."""
    n = len(classes)
    records: list[dict[str, Any]] = []
    step = 0
    for epoch in range(1, epochs + 1):
        for _ in range(steps_per_epoch):
            step += 1
            records.append({"event": "train", "epoch": epoch, "step": step, "loss": 2.0 / step,
                            "acc": min(1.0, 0.3 * step), "lr": 1e-3, "images_per_sec": 100.0,
                            "time": 1.7e9 + step})
        confusion = [[4 if i == j else epoch % 2 for j in range(n)] for i in range(n)]
        record = {"event": "epoch", "epoch": epoch, "step": step, "train_loss": 1.0 / epoch,
                  "train_acc": 0.5 + 0.1 * epoch, "val_loss": 1.1 / epoch, "val_acc1": 0.4 + 0.2 * epoch,
                  "val_per_class_acc": [0.4 + 0.2 * epoch] * n, "confusion": confusion, "lr": 1e-3,
                  "epoch_time": 1.5, "images_per_sec": 100.0, "best": True, "time": 1.7e9 + step,
                  "plugin_metric": 0.25 * epoch}
        if n >= 5:
            record["val_acc5"] = 1.0
        records.append(record)
    return records
