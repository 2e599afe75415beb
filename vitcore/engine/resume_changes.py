"""What ``vitcore resume RUN_DIR --set FIELD=VALUE`` may change, and applying it to a restored run.

A diverged run resumed as it was diverges again; a lower learning rate or gradient clipping is
the usual way out. Only fields whose change leaves the checkpoint valid may change: the model,
data, batch and schedule shape stay as trained.
"""

from __future__ import annotations

import copy
from typing import Any

from vitcore.errors import SpecError

#: Spec fields ``vitcore resume --set`` accepts (docs/ARCHITECTURE.md lists them too).
RESUMABLE_FIELDS = (
    "train.lr",
    "train.min_lr",
    "train.weight_decay",
    "train.clip_grad_norm",
    "train.label_smoothing",
    "train.epochs",
    "train.early_stopping_patience",
    "train.log_every_steps",
    "train.checkpoint_every_steps",
    "train.checkpoint_every_minutes",
    "train.num_workers",
    "train.compile",
)


def _differences(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return [d for k in keys for d in _differences(before.get(k), after.get(k), f"{path}.{k}" if path else k)]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in _differences(b, a, f"{path}.{i}")]
    return [] if before == after else [path]


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def resume_spec(saved: dict[str, Any], overrides: list[str], source: str) -> tuple[dict[str, Any], dict[str, list]]:
    """The run's spec with ``overrides`` applied, and ``{field: [old, new]}`` of what changed.

    Any change outside ``RESUMABLE_FIELDS`` is refused (exit 2), naming the field.
    """
    from vitcore.spec import apply_overrides

    changed = apply_overrides(copy.deepcopy(saved), list(overrides))
    fields = _differences(saved, changed)
    refused = [f for f in fields if f not in RESUMABLE_FIELDS]
    if refused:
        raise SpecError(
            f"{source}: --set {', '.join(refused)}: cannot change when resuming (the checkpoint was trained "
            f"with it). A resume may change: {', '.join(RESUMABLE_FIELDS)}. To change anything else, start a "
            "new run (model.init_from can start it from this run's weights)."
        )
    return changed, {f: [_get(saved, f), _get(changed, f)] for f in fields}


def apply_to_restored(optimizer: Any, scheduler: Any, changes: dict[str, list]) -> None:
    """Bring a restored optimizer and schedule in line with a changed lr or weight decay.

    The schedule keeps each group's base rate from the checkpoint; a new ``train.lr`` scales them
    all by new/old, so layer-wise decay ratios are kept.
    """
    if "train.lr" in changes:
        old, new = changes["train.lr"]
        scale = float(new) / float(old)
        scheduler.base_lrs = [base * scale for base in scheduler.base_lrs]
        for group in optimizer.param_groups:
            group["lr"] *= scale
            if "initial_lr" in group:
                group["initial_lr"] *= scale
    if "train.weight_decay" in changes:
        new = float(changes["train.weight_decay"][1])
        for group in optimizer.param_groups:
            if group.get("weight_decay", 0.0) > 0:  # no-decay groups stay at 0
                group["weight_decay"] = new
