"""Fixtures: an empty offline Hugging Face cache per test, tiny saved ViTs, tiny image folders.
(vitcore's pytest plugin gives each test a clean plugin host and vitcore cache.)

Helpers are fixtures (not importable functions) so they never clash with vitcore's own
``tests/conftest.py`` when both suites run in one pytest process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

#: The smallest ViT that still has every part: 4x4 patches of 8 px, one 2-head block.
TINY = {"image_size": 32, "patch_size": 8, "num_hidden_layers": 1, "hidden_size": 32,
        "num_attention_heads": 2, "intermediate_size": 64}


@pytest.fixture(autouse=True)
def _offline_hub(tmp_path, monkeypatch):
    """An empty, offline Hugging Face cache per test (vitcore's pytest plugin isolates vitcore)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def tiny() -> dict:
    return dict(TINY)


@pytest.fixture
def save_tiny_vit() -> Callable[..., Path]:
    """``save(folder, labels, processor=None)``: save_pretrained a tiny random ViT classifier."""

    def save(folder: Path, labels=("a", "b", "c"), processor: dict | None = None, seed: int = 0) -> Path:
        import torch
        from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

        torch.manual_seed(seed)
        config = ViTConfig(**TINY, id2label=dict(enumerate(labels)),
                           label2id={name: i for i, name in enumerate(labels)})
        ViTForImageClassification(config).save_pretrained(folder)
        if processor is not None:
            ViTImageProcessor(**processor).save_pretrained(folder)
        return folder

    return save


@pytest.fixture
def image_folder() -> Callable[..., Path]:
    """``make(root, classes)``: PNGs whose class is their dominant colour, learnable in a few steps."""

    def make(root: Path, classes=("red", "green", "blue"), per_class: int = 6, size: int = 32) -> Path:
        import numpy as np
        from PIL import Image

        colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
        rng = np.random.default_rng(0)
        for name in classes:
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.normal(colours[name], 25, size=(size, size, 3)).clip(0, 255).astype("uint8")
                Image.fromarray(pixels).save(root / name / f"{i}.png")
        return root

    return make
