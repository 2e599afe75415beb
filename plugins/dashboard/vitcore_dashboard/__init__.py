"""vitcore plugin: ``vitcore dashboard``, a live web dashboard of the runs under a folder.

Runs list (sweeps grouped), a live run page, compare, a model explorer and an attention explorer,
served by Starlette + uvicorn on 127.0.0.1 with Plotly.js shipped inside the package. It replaces
the core's TensorBoard-only ``vitcore dashboard``; ``--tensorboard`` starts TensorBoard beside it.

Importing this package, and calling its hook, loads neither torch nor Starlette: ``vitcore
--help`` imports every plugin and must stay fast.
"""

from __future__ import annotations

import vitcore

__version__ = "0.1.0"

VITCORE_PLUGIN_API = ">=1.3,<2"  # vitcore.api


@vitcore.hookimpl
def register_commands(cli: object) -> None:
    from vitcore_dashboard.commands import add_commands

    add_commands(cli)
