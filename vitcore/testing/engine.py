"""The engine as plugin tests meet it: a real training run from a spec dict, the optimizer and
schedule a builder's parameter groups get, a click group holding a plugin's commands.

The engine imports torch: it is imported inside the functions, so ``vitcore.testing`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click
    import torch

    from vitcore.components import ModelBuilder
    from vitcore.engine.trainer import RunResult


def train_spec(spec: Mapping[str, Any], overrides: Sequence[str] = (), run_dir: Path | None = None) -> "RunResult":
    """Resolve ``spec`` (a dict, as a spec file holds; ``--set``-style ``overrides``) and train it in
    this process, as ``vitcore run`` would; returns the run's directory and summary. ``run_dir``
    continues that run (``vitcore resume``)."""
    from vitcore.engine.trainer import train
    from vitcore.spec import load_dict

    resolved = load_dict(dict(spec), list(overrides))
    return train(resolved, run_dir)


def engine_param_groups(builder: "ModelBuilder", model: "torch.nn.Module", weight_decay: float = 0.05,
                        lr: float = 1.0) -> list[dict[str, Any]]:
    """The optimizer parameter groups the engine makes for ``model``: the builder's own
    ``param_groups`` if it gives some, else the engine's (no decay on norms, biases, embeddings
    and the builder's ``no_weight_decay`` names)."""
    from vitcore.engine.optim import param_groups

    return builder.param_groups(model, weight_decay, lr) or param_groups(model, weight_decay,
                                                                           builder.no_weight_decay(model))


def engine_optimizer(groups: list[dict[str, Any]], steps_per_epoch: int, **train: Any) -> tuple[Any, Any]:
    """``(optimizer, scheduler)`` as the engine builds them for ``groups`` on the CPU, from the
    spec's ``train`` fields (``lr``, ``epochs``, ``schedule``, ``warmup_epochs``, ...)."""
    import torch

    from vitcore.engine.optim import build_optimizer, build_scheduler
    from vitcore.spec import TrainSpec

    cfg = TrainSpec(**train)
    optimizer = build_optimizer(groups, cfg, torch.device("cpu"))
    return optimizer, build_scheduler(optimizer, cfg, steps_per_epoch=steps_per_epoch)


def command_group(add_commands: Callable[["click.Group"], None]) -> "click.Group":
    """A ``vitcore``-like click group holding only the commands ``add_commands(group)`` adds (what a
    ``register_commands`` hook does), for ``click.testing.CliRunner``: a ``VitcoreError`` becomes
    its message and exit code, as on the real command line."""
    from vitcore.cli import VitcoreGroup

    group = VitcoreGroup()
    add_commands(group)
    return group
