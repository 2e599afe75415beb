"""Shared fixtures: a clean plugin host per test, a private cache, and tiny real data sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vitcore import plugins

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test: its own cache folder, a fresh plugin host, and no stray plugin selection."""
    monkeypatch.setenv("VITCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VITCORE_LOAD_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()


def make_image_folder(root: Path, classes=("red", "green", "blue"), per_class: int = 6, size: int = 32) -> Path:
    """Real PNG files whose class is their dominant colour: learnable in a few steps."""
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30),
               "magenta": (220, 30, 220)}
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.normal(colours[name], 25, size=(size, size, 3)).clip(0, 255).astype("uint8")
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def tiny_spec(tmp_path: Path, **train) -> dict:
    """A spec that trains a 1-block ViT on a colour data set in a couple of seconds."""
    data = make_image_folder(tmp_path / "data")
    spec = {
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
    return spec


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(json.dumps(spec, indent=2))
    return path


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300,
            module: str = "vitcore") -> subprocess.CompletedProcess:
    """``python -m vitcore ARGS`` in a real child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)
