"""Fine-tuning: freezing the lower layers and layer-wise learning-rate decay.

Both use timm's own layer order (``group_matcher``: the stem of patch embedding, tokens and
position embedding is layer 0, then one layer per block, the classifier last), so they agree with
each other and with timm's training scripts for every ViT family.
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

from vitcore.api import SpecError
from vitcore_vit_timm.create import classifier_names

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


def freeze(model: "torch.nn.Module", finetune: str, blocks: int) -> None:
    """Set ``requires_grad`` False on what the fine-tuning mode keeps fixed."""
    if finetune == "full":
        return
    head = classifier_names(model)
    if finetune == "linear_probe":
        frozen = {n for n, _ in model.named_parameters() if not _under(n, head)}
    else:
        layers = layer_ids(model)
        head_layer = max(layers[n] for n, _ in model.named_parameters() if _under(n, head))
        if blocks >= head_layer:
            raise SpecError(f"model.freeze_blocks: {blocks}, but {model.pretrained_cfg.get('architecture', 'the model')} has "
                               f"{head_layer - 1} blocks; freeze fewer, or use finetune: linear_probe")
        frozen = {n for n, _ in model.named_parameters() if layers[n] <= blocks and not _under(n, head)}
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad_(False)


def layer_ids(model: "torch.nn.Module") -> dict[str, int]:
    """Parameter name -> timm layer index (0: stem, then blocks; the classifier is last)."""
    from timm.models import group_parameters

    return group_parameters(model, model.group_matcher(coarse=False), reverse=True)


def layer_decay_groups(model: "torch.nn.Module", weight_decay: float, lr: float,
                       layer_decay: float) -> list[dict[str, Any]]:
    """timm's layer-decay groups with absolute learning rates: ``lr * layer_decay ** (head - layer)``.

    Frozen parameters are left out; the engine's schedule scales every group's ``lr`` alike.
    """
    from timm.optim import param_groups_layer_decay

    groups = param_groups_layer_decay(model, weight_decay=weight_decay, layer_decay=layer_decay,
                                      no_weight_decay_list=_no_decay_patterns(model))
    return [{"params": g["params"], "weight_decay": g["weight_decay"], "lr": lr * g["lr_scale"]} for g in groups]


def no_decay_names(model: "torch.nn.Module") -> set[str]:
    """Parameters the model exempts from weight decay (its ``no_weight_decay()`` patterns)."""
    patterns = _no_decay_patterns(model)
    return {n for n, _ in model.named_parameters() if any(fnmatch(n, p) for p in patterns)}


def _no_decay_patterns(model: "torch.nn.Module") -> set[str]:
    return set(getattr(model, "no_weight_decay", set)())


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)
