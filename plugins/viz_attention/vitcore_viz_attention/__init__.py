"""vitcore plugin: see inside a Vision Transformer.

Visualizers (attention maps, attention rollout, attention statistics, position and patch
embeddings, FC layers) and two commands, ``vitcore visualize`` and ``vitcore report``.

Importing this package, and calling its hooks, loads neither torch nor matplotlib nor numpy:
``vitcore plugins list`` and ``vitcore --help`` import every plugin and must stay fast.
"""

from __future__ import annotations

import vitcore
from vitcore.api import Register

__version__ = "0.1.0"

VITCORE_PLUGIN_API = ">=1.3,<2"  # vitcore.api, Visualizer.draws_at


@vitcore.hookimpl
def register_visualizers(register: Register) -> None:
    from vitcore_viz_attention.visualizers import VISUALIZERS

    for visualizer in VISUALIZERS:
        register(visualizer)


@vitcore.hookimpl
def register_commands(cli: object) -> None:
    from vitcore_viz_attention.commands import add_commands

    add_commands(cli)


@vitcore.hookimpl
def run_finished(run_dir, summary) -> None:
    """Every finished run gets its report.html while this plugin is installed."""
    from vitcore_viz_attention.report import write_report

    write_report(run_dir)
