"""Fitting saved ViT weights to a model built for other data: one set of rules for every loader.

``model.weights`` of ``torchvision_vit``, ``model.init_from`` (any builder) and plugins loading
checkpoints (vit_hf) all go through here, so a checkpoint is adapted the same way wherever it
comes from:

* **Head.** The classifier is the model's last ``nn.Linear`` with one output per class
  (``head_keys``). It starts fresh when the checkpoint was trained on other classes: other
  names when both sides know them, else another class count. Nothing else is re-initialised.
* **Position embeddings.** An absolute table (``pos_embed``, ``pos_embedding``,
  ``position_embeddings``) for another patch grid is resized with torchvision's
  ``interpolate_embeddings``; class, distillation and register rows are kept as they are.
* **Anything else** that differs (a missing, unexpected or mis-shaped key) is a problem the
  caller reports: never a silently random layer.

torch is imported inside the functions: ``vitcore.api`` and the builtin model plugin import this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from vitcore.errors import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = [
    "POSITION_NAMES",
    "Adapted",
    "adapt_state_dict",
    "head_keys",
    "load_state_dict_file",
    "load_weights_file",
    "resize_pos_embed",
]

#: Last name part of absolute position tables: torchvision, timm, Hugging Face.
POSITION_NAMES = ("pos_embed", "pos_embedding", "position_embedding", "position_embeddings")

#: Prefixes wrappers add to every key (DistributedDataParallel, torch.compile).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def load_state_dict_file(path: Path) -> dict[str, "torch.Tensor"]:
    """Tensors of a ``.pth``/``.pt``/``.bin`` state dict (possibly under ``state_dict``/``model``) or a
    ``.safetensors`` file, read with ``weights_only=True``; wrapper prefixes are removed."""
    import torch

    if not path.is_file():
        raise VitcoreError(
            f"weights file {path} not found. vitcore never downloads weights: copy a checkpoint "
            "(.pth, .pt or .safetensors state dict, e.g. the file torchvision.models.ViT_B_16_Weights "
            "downloads into ~/.cache/torch/hub/checkpoints) onto this machine and set model.weights "
            "to its path"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors' own error types
            raise VitcoreError(f"{path}: not a safetensors weights file, or a truncated or corrupt one "
                               f"({type(exc).__name__}); use another copy") from None
    else:
        from vitcore.engine.checkpoint import load_torch_file

        state = load_torch_file(path, "weights file")
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VitcoreError(f"weights file {path}: expected a state dict of tensors, got {type(state).__name__}")
    state = dict(state)
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def head_keys(model: "torch.nn.Module", num_classes: int) -> list[str]:
    """State-dict keys of the classifier: the last linear layer with one output per class.

    Classifiers are built last in torchvision, timm and transformers models, so the last such
    layer is the head even when a hidden width happens to equal the class count.
    """
    import torch

    heads = [name for name, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and m.out_features == num_classes]
    if not heads:
        return []
    return [key for key in model.state_dict() if key.rpartition(".")[0] == heads[-1]]


def resize_pos_embed(table: "torch.Tensor", grid: int, num_prefix_tokens: int = 1) -> "torch.Tensor":
    """Resize a ``(1, prefix + g*g, D)`` position table to a ``grid`` x ``grid`` patch grid.

    The patch rows are interpolated bicubically by torchvision's ``interpolate_embeddings`` (what
    torchvision itself uses to load its ViT weights at another size); the ``num_prefix_tokens``
    rows before them (class, distillation, register tokens) are kept. Returns ``table`` itself when
    the grid already matches.
    """
    import torch
    from torchvision.models.vision_transformer import interpolate_embeddings

    patches = table.shape[1] - num_prefix_tokens
    old = math.isqrt(max(patches, 0))
    if table.ndim != 3 or table.shape[0] != 1 or patches < 1 or old * old != patches:
        raise VitcoreError(f"position embeddings of shape {tuple(table.shape)} with {num_prefix_tokens} "
                           "prefix token(s) do not hold a square patch grid")
    if old == grid:
        return table
    # torchvision's function keeps exactly one leading row: hand it the last prefix row (or a
    # placeholder when there is none) and put any earlier prefix rows back in front.
    kept = table[:, : max(num_prefix_tokens - 1, 0)]
    lead = table[:, num_prefix_tokens - 1 : num_prefix_tokens] if num_prefix_tokens else table.new_zeros(1, 1, table.shape[2])
    one_prefix = torch.cat([lead, table[:, num_prefix_tokens:]], dim=1).float()  # bicubic needs float
    resized = interpolate_embeddings(grid, 1, {"encoder.pos_embedding": one_prefix})["encoder.pos_embedding"]
    resized = resized.to(table.dtype)
    return torch.cat([kept, resized if num_prefix_tokens else resized[:, 1:]], dim=1)


def _is_position_table(key: str) -> bool:
    return key.rpartition(".")[2] in POSITION_NAMES


def _resized_positions(source: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor | None":
    """``source`` resized to ``target``'s grid, or None when they are not two square-grid tables
    with the same width and the same number of prefix rows."""
    if source.ndim != 3 or target.ndim != 3 or source.shape[0] != 1 or source.shape[-1] != target.shape[-1]:
        return None
    src_grid, tgt_grid = math.isqrt(source.shape[1]), math.isqrt(target.shape[1])
    prefix = source.shape[1] - src_grid**2
    if prefix != target.shape[1] - tgt_grid**2:
        return None
    return resize_pos_embed(source, tgt_grid, num_prefix_tokens=prefix)


def _some(keys: list[str], n: int = 5) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


@dataclass
class Adapted:
    """A checkpoint's state dict fitted to a model, and what had to change."""

    #: Every key of the model: the checkpoint's tensors, resized or fresh where listed below.
    state: dict[str, "torch.Tensor"]
    #: Head keys that keep the model's fresh initialisation (other classes).
    new_head: list[str] = field(default_factory=list)
    #: Position tables resized to the model's patch grid.
    resized: list[str] = field(default_factory=list)
    #: Why the checkpoint does not fit, grouped (missing, unexpected, mis-shaped keys); empty if it does.
    problems: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str:
        return "; ".join(self.problems)


def adapt_state_dict(
    state: Mapping[str, "torch.Tensor"], model: "torch.nn.Module", num_classes: int,
    same_classes: bool | None = None,
) -> Adapted:
    """Fit ``state`` to ``model`` (built for ``num_classes``) by the rules in this module's docstring.

    ``same_classes``: whether the checkpoint was trained on the model's classes, when both sides
    know their names (``model.init_from``); None when the checkpoint does not say (a weights
    file): then a head of another class count starts fresh and one of the same count is kept.
    """
    target = model.state_dict()
    new_head = []
    for key in head_keys(model, num_classes):
        old, fresh = state.get(key), target[key]
        if same_classes is False or (
            same_classes is None and old is not None and old.shape != fresh.shape and old.shape[1:] == fresh.shape[1:]
        ):
            new_head.append(key)
    merged: dict[str, "torch.Tensor"] = {}
    resized, missing, mismatched = [], [], []
    for key, fresh in target.items():
        loaded = state.get(key)
        if key in new_head:
            merged[key] = fresh
        elif loaded is None:
            missing.append(key)
        elif loaded.shape == fresh.shape:
            merged[key] = loaded
        elif _is_position_table(key) and (table := _resized_positions(loaded, fresh)) is not None:
            merged[key] = table
            resized.append(key)
        else:
            mismatched.append(f"{key} {tuple(loaded.shape)} vs {tuple(fresh.shape)}")
    unexpected = [k for k in state if k not in target]
    problems = [f"{label}: {_some(keys)}" for label, keys in (
        ("missing keys", missing), ("unexpected keys", unexpected),
        ("shape mismatches (checkpoint vs model)", mismatched)) if keys]
    return Adapted(merged, new_head, resized, problems)


def load_weights_file(model: "torch.nn.Module", path: Path, num_classes: int) -> Adapted:
    """Load a weights file into ``model``, adapting head and position grid; a VitcoreError naming
    the file and the keys when it does not fit."""
    adapted = adapt_state_dict(load_state_dict_file(path), model, num_classes)
    if adapted.problems:
        raise VitcoreError(
            f"weights file {path} does not fit this model; {adapted.problem}. "
            "Check that arch and the size options match the checkpoint."
        )
    model.load_state_dict(adapted.state)
    return adapted
