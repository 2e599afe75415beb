"""Fixtures: one real tiny source run per model family (torchvision, timm, Hugging Face), trained
once per session; tests copy it before writing into it (vitcore's pytest plugin gives each test
a clean plugin host and cache).

Helpers are fixtures (not importable functions) so they never clash with other suites' conftest
modules when every suite runs in one pytest process.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

from vitcore.testing import isolated, tiny_spec, train_spec

#: Two blocks of 4 heads of 8 channels over width 32, in each family; MLP widths 128 / 128 / 64.
MODELS: dict[str, dict[str, Any]] = {
    "torchvision": {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
                    "num_heads": 4},
    "timm": {"type": "timm_vit", "name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8, "depth": 2,
             "embed_dim": 32, "num_heads": 4},
    "hf": {"type": "hf_vit", "image_size": 32, "patch_size": 8, "num_hidden_layers": 2, "hidden_size": 32,
           "num_attention_heads": 4, "intermediate_size": 64},
}
PLUGINS = {"torchvision": None, "timm": "vitcore_vit_timm", "hf": "vitcore_vit_hf"}


@pytest.fixture(autouse=True)
def _offline_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def source_runs(tmp_path_factory) -> dict[str, Path]:
    """family -> a trained 2-epoch run whose end exports onnx (no int8 variants: faster)."""
    runs: dict[str, Path] = {}
    for family, model in MODELS.items():
        if PLUGINS[family] and importlib.util.find_spec(PLUGINS[family]) is None:
            continue
        root = tmp_path_factory.mktemp(f"source-{family}")
        spec = tiny_spec(root, epochs=2)
        spec.update(name=family, model=dict(model), sinks=[], visualizers=[],
                    exporters=[{"type": "onnx", "quantize_int8": False, "quantize_static": False,
                                "latency_seconds": 0.01}])
        with isolated(root / "cache"):
            runs[family] = Path(train_spec(spec).summary["run_dir"])
    return runs


@pytest.fixture(params=list(MODELS))
def family(request, source_runs) -> str:
    if request.param not in source_runs:
        pytest.skip(f"{PLUGINS[request.param]} is not installed")
    return request.param


@pytest.fixture
def source(family, source_runs, tmp_path) -> Path:
    """A private copy of the family's source run (runs/<family>/v1), to prune into."""
    return Path(shutil.copytree(source_runs[family], tmp_path / "runs" / family / "v1"))
