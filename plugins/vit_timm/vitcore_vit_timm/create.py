"""Building a timm ViT, from scratch or from a checkpoint, through ``timm.create_model``.

timm adapts a checkpoint to the model (position embeddings and patch projection resized to the
new grid, relative-position tables, foreign key layouts). It drops a classifier of another class
count, but then loads the rest non-strictly, so a checkpoint of another architecture would load
silently half-random. Hence: build with the checkpoint's class count (a strict load, every key
must fit), then give the model a fresh head for the data set's classes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from vitcore.api import SpecError, VitcoreError
from vitcore_vit_timm.weights import Checkpoint, checkpoint_classes

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


def create_model(name: str, num_classes: int, architecture: dict[str, Any],
                 checkpoint: Checkpoint | None) -> "torch.nn.Module":
    """A timm model of ``name`` with ``num_classes`` outputs, with the checkpoint's weights if given."""
    if checkpoint is None:
        return _create(name, architecture, None, num_classes=num_classes)
    overlay: dict[str, Any] = {"file": str(checkpoint.path)}
    if checkpoint.path.suffix == ".npz":  # original JAX/big_vision weights: timm's own npz reader
        overlay["custom_load"] = True
        rows = None
    else:
        rows = checkpoint_classes(checkpoint, classifier_names(name))
    if rows is not None:
        overlay["num_classes"] = rows  # equal to the model's: timm keeps the head and loads strictly
    built = num_classes if rows is None else rows
    model = _create(name, architecture, checkpoint, num_classes=built, pretrained=True,
                    pretrained_cfg_overlay=overlay)
    if built != num_classes:
        _new_head(model, num_classes)
    return model


def classifier_names(name_or_model: "str | torch.nn.Module") -> tuple[str, ...]:
    """The classifier modules (``head``; DeiT-distilled: ``head``, ``head_dist``) per the pretrained_cfg."""
    if isinstance(name_or_model, str):
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name_or_model)
        names = cfg.classifier if cfg is not None else None
    else:
        names = name_or_model.pretrained_cfg.get("classifier")
    names = names or "head"
    return (names,) if isinstance(names, str) else tuple(names)


def _create(name: str, architecture: dict[str, Any], checkpoint: Checkpoint | None,
            **kwargs: Any) -> "torch.nn.Module":
    import timm

    try:
        return timm.create_model(name, **architecture, **kwargs)
    except Exception as exc:  # timm reports bad sizes and misfit checkpoints with assorted exceptions
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if isinstance(exc, TypeError) and unexpected and unexpected.group(1) in architecture:
            raise SpecError(f"model.{unexpected.group(1)}: timm's {name} does not take this option; "
                               "remove it") from exc
        where = f" with {architecture}" if architecture else ""
        if checkpoint is None:
            raise VitcoreError(f"model: timm cannot build {name}{where}: {_short(exc)}") from exc
        raise VitcoreError(
            f"{checkpoint.origin}: {checkpoint.path} does not load into timm's {name}{where}: {_short(exc)}. "
            "Check that model.name and the size options match the checkpoint") from exc


def _new_head(model: "torch.nn.Module", num_classes: int) -> None:
    """A classifier for ``num_classes``, initialised as timm initialises one (small normal, zero bias)."""
    import torch

    model.reset_classifier(num_classes)
    for name in classifier_names(model):
        head = model.get_submodule(name)
        if isinstance(head, torch.nn.Linear):
            torch.nn.init.trunc_normal_(head.weight, std=0.02)
            torch.nn.init.zeros_(head.bias)


def _short(exc: Exception, limit: int = 600) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + " ..."
