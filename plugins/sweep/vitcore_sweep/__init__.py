"""vitcore plugin: hyperparameter sweeps on Optuna.

The ``sweep`` commands (``vitcore sweep SWEEP_FILE``, ``validate``, ``show``) and the
``optuna_trial`` metric sink through which each trial's run reports its epochs and is pruned.

Importing this package, and calling its hooks, loads neither Optuna nor torch: ``vitcore
plugins list`` and ``vitcore --help`` import every plugin and must stay fast.
"""

from __future__ import annotations

import vitcore
from vitcore.api import Register

__version__ = "0.1.0"

VITCORE_PLUGIN_API = ">=1.3,<2"  # StopRun from a sink, summary.json's meta


@vitcore.hookimpl
def register_metric_sinks(register: Register) -> None:
    from vitcore_sweep.sink import OptunaTrialSink

    register(OptunaTrialSink)


@vitcore.hookimpl
def register_commands(cli: object) -> None:
    from vitcore_sweep.commands import add_commands

    add_commands(cli)
