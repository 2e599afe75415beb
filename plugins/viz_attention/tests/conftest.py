"""Fixtures: tiny ViTs (torchvision's and a toy one with two prefix tokens on a non-square grid)
and one small model trained on ``shapes``, shared by the session. vitcore's pytest plugin gives
each test a clean plugin host and cache.

Helpers are fixtures (not importable functions) so they never clash with other suites' conftests
when every suite runs in one pytest process.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import vitcore
from vitcore.api import ViTView

#: The ``shapes`` run the acceptance and command tests share: one block on 8x8 patches of 4 px,
#: two classes, 20 epochs (a few seconds on a CPU). Rollout then favours the shapes' boxes.
SHAPES_SPEC: dict[str, Any] = {
    "name": "shapes-tiny",
    "data": {"type": "shapes", "classes": ["circle", "cross"], "train_per_class": 40, "val_per_class": 20,
             "image_size": 32, "min_size_fraction": 0.3, "max_size_fraction": 0.6},
    "model": {"type": "torchvision_vit", "image_size": 32, "patch_size": 4, "depth": 1, "embed_dim": 32,
              "num_heads": 2},
    "augmentations": [],
    "train": {"epochs": 20, "batch_size": 16, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0,
              "log_every_steps": 50, "seed": 0},
    "sinks": [{"type": "jsonl"}, {"type": "tensorboard", "log_graph": False}],
    "visualizers": [{"type": "curves"}, {"type": "confusion_matrix"},
                    {"type": "attention_rollout", "every_n_epochs": 10, "num_samples": 2},
                    {"type": "fc_layers", "every_n_epochs": 10}],
    "exporters": [],
}


@pytest.fixture
def torchvision_vit() -> torch.nn.Module:
    """A 2-block, 2-head torchvision ViT on 32x32 images (4x4 patches of 8 px), in eval mode."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=16, mlp_dim=32, num_classes=3).eval()


class ToyBlock(torch.nn.Module):
    """A pre-norm transformer block that computes its attention weights explicitly."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv, self.proj = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.fc1, self.fc2 = torch.nn.Linear(dim, 2 * dim), torch.nn.Linear(2 * dim, dim)

    def forward(self, tokens: torch.Tensor, store: list | None) -> torch.Tensor:
        batch, count, dim = tokens.shape
        q, k, v = self.qkv(self.norm1(tokens)).view(batch, count, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attention = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
        if store is not None:
            store.append(attention.detach())
        tokens = tokens + self.proj((attention @ v).transpose(1, 2).reshape(batch, count, dim))
        return tokens + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(tokens))))


class ToyViT(torch.nn.Module):
    """A ViT with ``prefix`` tokens (class + registers) before the patches of a non-square image."""

    def __init__(self, image_size=(24, 40), patch_size=(8, 8), prefix: int = 2, pooling: str = "token",
                 dim: int = 16, heads: int = 2, depth: int = 2, classes: int = 3) -> None:
        super().__init__()
        self.image_size, self.patch_size, self.pooling, self.prefix = image_size, patch_size, pooling, prefix
        self.grid = (image_size[0] // patch_size[0], image_size[1] // patch_size[1])
        self.embed = torch.nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.prefix_tokens = torch.nn.Parameter(torch.randn(1, prefix, dim) * 0.02)
        self.position = torch.nn.Parameter(torch.randn(1, prefix + self.grid[0] * self.grid[1], dim))
        self.blocks = torch.nn.ModuleList(ToyBlock(dim, heads) for _ in range(depth))
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, images: torch.Tensor, store: list | None = None) -> torch.Tensor:
        patches = self.embed(images).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.prefix_tokens.expand(len(images), -1, -1), patches], dim=1) + self.position
        for block in self.blocks:
            tokens = block(tokens, store)
        return self.head(tokens[:, 0] if self.pooling == "token" else tokens[:, self.prefix:].mean(dim=1))


def toy_view(model: Any) -> ViTView | None:
    if not isinstance(model, ToyViT):
        return None

    def capture_attention(images: torch.Tensor) -> list[torch.Tensor]:
        store: list[torch.Tensor] = []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(images, store)
        model.train(was_training)
        return store

    return ViTView(
        model=model, image_size=model.image_size, patch_size=model.patch_size, num_prefix_tokens=model.prefix,
        num_blocks=len(model.blocks), num_heads=model.blocks[0].heads, pooling=model.pooling,
        capture_attention=capture_attention, position_embedding=lambda: model.position.detach()[0],
        patch_embedding_weight=lambda: model.embed.weight.detach(),
        mlp_layers=lambda: [(f"block{i}", b.fc1, b.fc2) for i, b in enumerate(model.blocks)],
        head=lambda: model.head,
    )


class ToyPlugin:
    """Answers ``vit_view`` for ``ToyViT``, as a model plugin does for its own models."""

    @vitcore.hookimpl
    def vit_view(self, model: Any) -> ViTView | None:
        return toy_view(model)


@pytest.fixture
def toy_vit() -> Callable[..., ToyViT]:
    """``make(**options)``: a seeded ToyViT in eval mode, its plugin registered for the test."""
    from vitcore.testing import registered_plugin

    with registered_plugin(ToyPlugin(), "toy-vit"):

        def make(**options: Any) -> ToyViT:
            torch.manual_seed(0)
            return ToyViT(**options).eval()

        yield make


@pytest.fixture(scope="session")
def shapes_run(tmp_path_factory) -> Path:
    """The run directory of ``SHAPES_SPEC`` trained once for the session."""
    from vitcore.testing import train_spec

    root = tmp_path_factory.mktemp("shapes-run")
    spec = {**SHAPES_SPEC, "output_dir": str(root / "runs"),
            "data": {**SHAPES_SPEC["data"], "root": str(root / "shapes")}}
    torch.manual_seed(0)
    return train_spec(spec).run_dir
