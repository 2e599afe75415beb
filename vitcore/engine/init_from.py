"""Starting a run from an earlier run's weights (``model.init_from``), with any model builder.

The weights are fitted by ``vitcore.weights`` (the rules every weight loader shares): a new head
when the classes differ, position embeddings resized when the image size differs; any other
mismatch is an error, never a silent re-initialisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vitcore.errors import SpecError


def checkpoint_of(source: str) -> Path:
    """The checkpoint file ``model.init_from`` names; SpecError (exit 2) when there is none."""
    return _checkpoint_path(source)[0]


def _checkpoint_path(source: str) -> tuple[Path, Path | None]:
    """(checkpoint file, run directory or None) for a run directory or a file."""
    from vitcore.runs import resolve_run_dir

    path = Path(source).expanduser()
    if path.is_file():
        return path, None
    if not path.exists():
        raise SpecError(f"model.init_from: {path} does not exist (give runs/<name>/v<N> or a checkpoint file)")
    run_dir = resolve_run_dir(path)
    for name in ("best.pt", "last.pt"):
        if (run_dir / "checkpoints" / name).is_file():
            return run_dir / "checkpoints" / name, run_dir
    raise SpecError(f"model.init_from: {run_dir} has no checkpoint yet (checkpoints/best.pt)")


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    if path.suffix == ".safetensors":
        from vitcore.weights import load_state_dict_file

        return load_state_dict_file(path), None
    from vitcore.engine.checkpoint import load_torch_file

    payload = load_torch_file(path, "weights file")
    for key in ("model", "state_dict"):
        if isinstance(payload.get(key), dict):
            return payload[key], payload.get("classes")
    return payload, None


def init_from(model: torch.nn.Module, source: str, classes: list[str]) -> dict[str, Any]:
    """Load ``source``'s weights into ``model``; returns the lineage recorded in summary.json."""
    from vitcore.hashing import sha256
    from vitcore.weights import adapt_state_dict

    ckpt_path, run_dir = _checkpoint_path(source)
    state, source_classes = _read_state(ckpt_path)
    # A model narrowed from its source's architecture (vitcore-prune's `pruned`) maps the source's
    # full-size weights onto itself first: ``model.vitcore_source_state(state) -> state``.
    from_source = getattr(model, "vitcore_source_state", None)
    if callable(from_source):
        state = from_source(state)
    # A new head when the classes differ by name or count (vitcore checkpoints record them).
    same = None if source_classes is None else list(source_classes) == list(classes)
    adapted = adapt_state_dict(state, model, len(classes), same_classes=same)
    if adapted.problems:
        raise SpecError(
            f"model.init_from: {ckpt_path} does not fit this model ({adapted.problem}). Use the same model "
            "type and sizes as the earlier run (only the class count and image size may differ)."
        )
    model.load_state_dict(adapted.state)
    lineage: dict[str, Any] = {
        "init_from": source,
        "checkpoint": str(ckpt_path),
        "sha256": sha256(ckpt_path),
        "source_classes": source_classes,
        "new_head": adapted.new_head,
        "resized": adapted.resized,
    }
    if run_dir is not None:
        lineage["source_run"] = {"name": run_dir.parent.name, "version": run_dir.name, "path": str(run_dir)}
    return lineage
