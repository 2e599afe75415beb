"""Fixtures: a clean plugin host per test, one real tiny run exported to ONNX, export contexts.

Helpers are fixtures (not importable functions) so they never clash with other suites' conftest
modules when every suite runs in one pytest process.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from vitcore import plugins
from vitcore.testing import tiny_spec


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own vitcore cache, no plugin selection, a fresh plugin host."""
    monkeypatch.setenv("VITCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VITCORE_LOAD_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture(scope="session")
def onnx_run(tmp_path_factory) -> Path:
    """A real tiny torchvision-ViT run whose end exports safetensors and onnx (default options).

    Shared by several modules: tests that write into a run copy it first (``run_copy``).
    """
    from vitcore.engine.trainer import train
    from vitcore.spec import load_dict

    root = tmp_path_factory.mktemp("onnx-run")
    spec = tiny_spec(root, epochs=2)
    spec.update(sinks=[], visualizers=[], exporters=[{"type": "safetensors"}, {"type": "onnx"}])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VITCORE_CACHE", str(root / "cache"))
        plugins.reset()
        result = train(load_dict(spec))
        plugins.reset()
    return Path(result.summary["run_dir"])


@pytest.fixture
def run_copy(onnx_run, tmp_path) -> Path:
    """A private copy of ``onnx_run`` (same version folder name) to export into or tamper with."""
    return Path(shutil.copytree(onnx_run, tmp_path / "runs" / "tiny" / onnx_run.name))


@pytest.fixture
def export_context(onnx_run, tmp_path) -> Callable[..., Any]:
    """``make(**changes)``: an ExportContext of the run's best model writing into an empty run folder
    (spec and summary only), as ``vitcore export`` builds it."""
    from vitcore.components import ExportContext
    from vitcore.inference import load_run_model
    from vitcore.runs import read_json

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

        from vitcore.builtin.images import load_rgb
        from vitcore.builtin.transforms import eval_transform
        from vitcore.engine.data import DeviceNormalize
        from vitcore.testing import make_image_folder

        folder = make_image_folder(tmp_path / "images", per_class=2, size=pre.image_size)
        files = sorted(folder.rglob("*.png"))[:count]
        batch = torch.stack([eval_transform(pre)(load_rgb(p)) for p in files])
        return DeviceNormalize(pre, torch.device("cpu"))(batch)

    return make
