"""Fixtures: private, empty, offline Hugging Face caches per test; tiny saved timm ViTs.
(vitcore's pytest plugin gives each test a clean plugin host and vitcore cache.)

Helpers are fixtures (not importable functions) so they never clash with other suites' conftest
modules when every suite runs in one pytest process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

#: The smallest timm ViT with every part: 4x4 patches of 8 px, two 2-head blocks of width 32.
TINY = {"name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
        "num_heads": 2}


@pytest.fixture(autouse=True)
def _offline_hub(tmp_path, monkeypatch):
    """An empty, offline Hugging Face cache per test (vitcore's pytest plugin isolates vitcore)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def tiny() -> dict[str, Any]:
    """``timm_vit`` options of the tiny ViT (without ``type``)."""
    return dict(TINY)


@pytest.fixture
def tiny_timm() -> Callable[..., Any]:
    """``make(num_classes=5, seed=0, **sizes)``: a tiny timm ViT built by timm itself."""

    def make(num_classes: int = 5, seed: int = 0, **sizes: Any):
        import timm
        import torch

        torch.manual_seed(seed)
        options = {**TINY, **sizes}
        return timm.create_model(options.pop("name"), num_classes=num_classes, **options)

    return make


@pytest.fixture
def save_weights() -> Callable[..., Path]:
    """``save(model, path)``: write the state dict as .safetensors or with torch.save (other suffixes)."""

    def save(model, path: Path) -> Path:
        import torch
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if path.suffix == ".safetensors":
            save_file(state, str(path))
        else:
            torch.save(state, path)
        return path

    return save


@pytest.fixture
def hf_cache(tmp_path, save_weights) -> Callable[..., Path]:
    """``put(repo_id, model, cache=None)``: a Hugging Face hub cache entry as ``hf download`` leaves it
    (``models--org--name/{refs/main, snapshots/<rev>/{model.safetensors, config.json}}``) in
    ``cache``, by default the test's HF_HUB_CACHE; returns the snapshot folder."""

    def put(repo_id: str, model, cache: Path | None = None,
            revision: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
        import json

        repo = (cache or tmp_path / "hf-cache") / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / revision
        save_weights(model, snapshot / "model.safetensors")
        config = {"architecture": model.pretrained_cfg["architecture"], "num_classes": model.num_classes,
                  "pretrained_cfg": {k: model.pretrained_cfg[k] for k in ("mean", "std", "crop_pct")}}
        (snapshot / "config.json").write_text(json.dumps(config))
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(revision)
        return snapshot

    return put


@pytest.fixture
def image_folder() -> Callable[..., Path]:
    """``make(root)``: PNGs of three noisy colours, learnable in a few steps."""
    from vitcore.testing import make_image_folder

    return make_image_folder
