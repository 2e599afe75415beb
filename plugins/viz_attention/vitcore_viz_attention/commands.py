"""The ``vitcore visualize`` and ``vitcore report`` commands (added through ``register_commands``).

Only click is imported here: ``vitcore --help`` builds these commands on every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vitcore_viz_attention.visualizers import NAMES


def add_commands(cli: Any) -> None:
    """Add ``visualize`` and ``report`` to the ``vitcore`` click group."""

    @cli.command("visualize")
    @click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
    @click.argument("images", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                  help="Folder for the pictures (default RUN_DIR/viz).")
    @click.option("--only", "names", multiple=True, type=click.Choice(NAMES),
                  help="Run only this visualizer (repeatable); default all.")
    @click.option("--count", default=4, show_default=True, type=click.IntRange(min=1),
                  help="Validation images to look at when no IMAGES are given.")
    @click.option("--option", "overrides", multiple=True, metavar="NAME.FIELD=VALUE",
                  help="A visualizer option, e.g. --option attention_rollout.head_fusion=max (repeatable).")
    def visualize(run_dir: Path, images: tuple[Path, ...], out: Path | None, names: tuple[str, ...],
                  count: int, overrides: tuple[str, ...]) -> None:
        """Look inside RUN_DIR's best model: attention maps, rollout, statistics, embeddings, FC layers.

        Uses IMAGES when given, else the run's validation images; writes PNGs into RUN_DIR/viz.
        """
        from vitcore.api import resolve_run_dir
        from vitcore_viz_attention.offline import visualize_run

        for path in visualize_run(resolve_run_dir(run_dir), images, out, names, count, overrides):
            click.echo(path)

    @cli.command("report")
    @click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                  help="The HTML file to write (default RUN_DIR/report.html).")
    @click.option("--viz", type=click.Path(file_okay=False, path_type=Path),
                  help="Folder of `vitcore visualize` pictures (default RUN_DIR/viz).")
    def report(run_dir: Path, out: Path | None, viz: Path | None) -> None:
        """Write one self-contained HTML page about RUN_DIR: summary, curves, confusion matrix,
        architecture and the pictures of `vitcore visualize`, embedded."""
        from vitcore.api import resolve_run_dir
        from vitcore_viz_attention.report import write_report

        click.echo(write_report(resolve_run_dir(run_dir), out, viz))
