"""vitcore plugin: structured pruning of a run's attention heads and MLP channels.

The ``pruned`` model builder (a base model entry plus the heads and channels each block keeps)
and the ``vitcore prune RUN_DIR`` command that chooses them by importance and makes a new run
version from them. Importing this package loads no torch: ``vitcore plugins list`` imports it.
"""

from __future__ import annotations

import vitcore
from vitcore.api import Register

__version__ = "0.1.0"

VITCORE_PLUGIN_API = ">=1.3,<2"


@vitcore.hookimpl
def register_models(register: Register) -> None:
    from vitcore_prune.builder import PrunedViT

    register(PrunedViT)


@vitcore.hookimpl
def register_commands(cli: object) -> None:
    from vitcore_prune.command import add_commands

    add_commands(cli)
