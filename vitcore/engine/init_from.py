"""Starting a run from an earlier run's weights (``model.init_from``), with any model builder.

The earlier run's head is replaced when the class count differs and position embeddings are
resized when the image size differs; any other mismatch is an error, never a silent re-init.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from vitcore.errors import VitcoreError

POS_EMBED_NAMES = ("pos_embed", "pos_embedding", "position_embedding")


def _checkpoint_path(source: str) -> tuple[Path, Path | None]:
    """(checkpoint file, run directory or None) for a run directory or a file."""
    from vitcore.runs import resolve_run_dir

    path = Path(source).expanduser()
    if path.is_file():
        return path, None
    if not path.exists():
        raise VitcoreError(f"model.init_from: {path} does not exist (give runs/<name>/v<N> or a checkpoint file)")
    run_dir = resolve_run_dir(path)
    for name in ("best.pt", "last.pt"):
        if (run_dir / "checkpoints" / name).is_file():
            return run_dir / "checkpoints" / name, run_dir
    raise VitcoreError(f"model.init_from: {run_dir} has no checkpoint yet (checkpoints/best.pt)")


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path)), None
    from vitcore.engine.checkpoint import load_checkpoint

    payload = load_checkpoint(path)
    for key in ("model", "state_dict"):
        if isinstance(payload.get(key), dict):
            return payload[key], payload.get("classes")
    return payload, None


def _resize_positions(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Bicubic resize of a (1, prefix + g*g, D) table to the target's grid; None if not such a table."""
    from vitcore.builtin.models import resize_pos_embed

    if source.ndim != 3 or target.ndim != 3 or source.shape[-1] != target.shape[-1]:
        return None
    src_grid, tgt_grid = math.isqrt(source.shape[1]), math.isqrt(target.shape[1])
    prefix = source.shape[1] - src_grid**2
    if prefix != target.shape[1] - tgt_grid**2:
        return None
    return resize_pos_embed(source, tgt_grid, num_prefix_tokens=prefix)


def head_keys(model: torch.nn.Module, num_classes: int) -> set[str]:
    """State-dict keys of the classifier: the last linear layer with one output per class."""
    heads = [(name, m) for name, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and m.out_features == num_classes]
    if not heads:
        return set()
    name = heads[-1][0]
    return {f"{name}.weight", f"{name}.bias"}


def _sha256(path: Path) -> str:
    from vitcore.builtin.exporters import sha256

    return sha256(path)


def init_from(model: torch.nn.Module, source: str, classes: list[str]) -> dict[str, Any]:
    """Load ``source``'s weights into ``model``; returns the lineage recorded in summary.json."""
    ckpt_path, run_dir = _checkpoint_path(source)
    state, source_classes = _read_state(ckpt_path)
    target = model.state_dict()
    # A new head when the classes differ (by count or by name); the earlier head otherwise.
    new_head = head_keys(model, len(classes)) if source_classes != classes else set()
    merged, kept_fresh, resized, problems = {}, [], [], []
    for key, tensor in target.items():
        loaded = state.get(key)
        if key in new_head:
            merged[key] = tensor
            kept_fresh.append(key)
        elif loaded is None:
            problems.append(f"missing {key}")
        elif loaded.shape == tensor.shape:
            merged[key] = loaded
        elif any(n in key for n in POS_EMBED_NAMES) and (new := _resize_positions(loaded, tensor)) is not None:
            merged[key] = new
            resized.append(key)
        else:
            problems.append(f"{key}: {tuple(loaded.shape)} in the checkpoint, {tuple(tensor.shape)} here")
    unexpected = sorted(set(state) - set(target) - new_head)
    if problems or unexpected:
        detail = "; ".join(problems[:5] + [f"unexpected {k}" for k in unexpected[:5]])
        raise VitcoreError(
            f"model.init_from: {ckpt_path} does not fit this model ({detail}). Use the same model type and "
            "sizes as the earlier run (only the class count and image size may differ)."
        )
    model.load_state_dict(merged)
    lineage: dict[str, Any] = {
        "init_from": source,
        "checkpoint": str(ckpt_path),
        "sha256": _sha256(ckpt_path),
        "source_classes": source_classes,
        "new_head": kept_fresh,
        "resized": resized,
    }
    if run_dir is not None:
        lineage["source_run"] = {"name": run_dir.parent.name, "version": run_dir.name, "path": str(run_dir)}
    return lineage
