"""Fixtures: a tiny base spec on the shapes data (2 classes, 32 px, 2-block ViT, 3 epochs: one
trial is a few seconds of a `vitcore run` process) and a writer for sweep folders around it.

Helpers are fixtures (not importable functions) so they never clash with other suites' conftest
modules when every suite runs in one pytest process. The vitcore pytest plugin gives every test
its own cache and plugin host; sweeps started by module-scoped fixtures get theirs explicitly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

#: Two easy classes: a 2-block ViT is well above chance after one epoch at lr 3e-3, and at
#: chance at lr 10 (what the median pruner must stop).
BASE_SPEC: dict[str, Any] = {
    "name": "base",
    "output_dir": "runs",
    "data": {"type": "shapes", "classes": ["circle", "cross"], "train_per_class": 64, "val_per_class": 32,
             "image_size": 32, "min_size_fraction": 0.4},
    "model": {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
              "num_heads": 2},
    "augmentations": [],
    "train": {"epochs": 3, "batch_size": 16, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0,
              "log_every_steps": 50},
    "sinks": [],
    "visualizers": [],
    "exporters": [],
}


@pytest.fixture(scope="session")
def base_spec() -> Callable[[], dict[str, Any]]:
    """``base_spec()``: a fresh copy of BASE_SPEC to change."""
    return lambda: json.loads(json.dumps(BASE_SPEC))


@pytest.fixture(scope="session")
def make_sweep() -> Callable[..., Path]:
    """``make(folder, sweep, **train)``: base.json (BASE_SPEC, train fields overridden) and
    sweep.yaml (``sweep`` with ``base: base.json`` unless given) in ``folder``; returns sweep.yaml."""

    def make(folder: Path, sweep: dict[str, Any], base: dict[str, Any] | None = None, **train: Any) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        spec = json.loads(json.dumps(base or BASE_SPEC))
        spec["train"].update(train)
        (folder / "base.json").write_text(json.dumps(spec, indent=2))
        path = folder / "sweep.yaml"
        path.write_text(yaml.safe_dump({"base": "base.json", **sweep}, sort_keys=False))
        return path

    return make


@pytest.fixture(scope="session")
def sweep_env(tmp_path_factory) -> dict[str, str]:
    """The environment of sweep processes: a cache shared by the session's sweeps (the shapes
    data is drawn once), no plugin selection."""
    env = {k: v for k, v in os.environ.items() if k != "VITCORE_LOAD_PLUGINS"}
    env["VITCORE_CACHE"] = str(tmp_path_factory.mktemp("sweep-cache"))
    return env


@pytest.fixture(scope="session")
def vitcore_cli(sweep_env) -> Callable[..., subprocess.CompletedProcess]:
    """``cli(*args, cwd=...)``: ``python -m vitcore ARGS`` in a child process, real exit code."""

    def cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vitcore", *args], capture_output=True, text=True,
                              env=sweep_env, cwd=cwd, timeout=timeout)

    return cli


@pytest.fixture(scope="session")
def study_of() -> Callable[[Path], Any]:
    """``study_of(sweep_dir)``: the Optuna study a sweep folder's sweep.json names."""

    def load(sweep_dir: Path) -> Any:
        import optuna

        record = json.loads((sweep_dir / "sweep.json").read_text())
        return optuna.load_study(study_name=record["study"], storage=record["storage"])

    return load
