"""Helpers for tests of vitcore and of plugins: tiny real data sets, tiny specs, the CLI in a child.

Cheap to import (no torch at module level), so a plugin's own test suite can use it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

#: Mean colours of the classes ``make_image_folder`` draws.
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (220, 220, 30),
    "magenta": (220, 30, 220),
}


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
        "model": {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 1,
                  "embed_dim": 32, "num_heads": 2},
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
