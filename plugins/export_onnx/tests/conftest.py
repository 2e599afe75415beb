"""Fixtures: one real tiny run exported to ONNX, export contexts (vitcore's pytest plugin gives
each test a clean plugin host and cache).

Helpers are fixtures (not importable functions) so they never clash with other suites' conftest
modules when every suite runs in one pytest process.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from vitcore.testing import isolated, tiny_spec, train_spec


@pytest.fixture(scope="session")
def onnx_run(tmp_path_factory) -> Path:
    """A real tiny torchvision-ViT run whose end exports safetensors and onnx (default options).

    Shared by several modules: tests that write into a run copy it first (``run_copy``).
    """
    root = tmp_path_factory.mktemp("onnx-run")
    spec = tiny_spec(root, epochs=2)
    spec.update(sinks=[], visualizers=[], exporters=[{"type": "safetensors"}, {"type": "onnx"}])
    with isolated(root / "cache"):
        result = train_spec(spec)
    return Path(result.summary["run_dir"])


@pytest.fixture
def run_copy(onnx_run, tmp_path) -> Path:
    """A private copy of ``onnx_run`` (same version folder name) to export into or tamper with."""
    return Path(shutil.copytree(onnx_run, tmp_path / "runs" / "tiny" / onnx_run.name))


@pytest.fixture
def export_context(onnx_run, tmp_path) -> Callable[..., Any]:
    """``make(**changes)``: an ExportContext of the run's best model writing into an empty run folder
    (spec and summary only), as ``vitcore export`` builds it."""
    from vitcore.api import ExportContext, load_run_model, read_json

    loaded = load_run_model(onnx_run)
    run_dir = tmp_path / "runs" / "tiny" / "v7"
    run_dir.mkdir(parents=True)
    for name in ("spec.json", "summary.json"):
        shutil.copy(onnx_run / name, run_dir / name)

    def make(**changes: Any) -> ExportContext:
        fields = dict(run_dir=run_dir, model=loaded.model, classes=loaded.classes,
                      preprocessing=loaded.preprocessing, spec=read_json(run_dir / "spec.json"))
        return ExportContext(**{**fields, **changes})

    return make


@pytest.fixture
def real_images(tmp_path) -> Callable[..., Any]:
    """``make(pre, count)``: normalised float images drawn like the run's data, and their folder."""

    def make(pre, count: int = 4):
        import torch

        from vitcore.api import eval_transform, load_rgb, normalize
        from vitcore.testing import make_image_folder

        folder = make_image_folder(tmp_path / "images", per_class=2, size=pre.image_size)
        files = sorted(folder.rglob("*.png"))[:count]
        return normalize(torch.stack([eval_transform(pre)(load_rgb(p)) for p in files]), pre)

    return make
