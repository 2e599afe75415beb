"""``vitcore sweep SWEEP_FILE``, ``vitcore sweep validate SWEEP_FILE`` and ``vitcore sweep show
SWEEP_DIR`` (added through the ``register_commands`` hook).

Only click is imported here: ``vitcore --help`` builds these commands on every start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


class SweepGroup(click.Group):
    """``vitcore sweep FILE ...`` is ``vitcore sweep run FILE ...``: the group's own commands
    (validate, show, run) come first, anything else is a sweep file to run."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def add_commands(cli: Any) -> None:
    """Add the ``sweep`` group to the ``vitcore`` click group."""

    @cli.group("sweep", cls=SweepGroup)
    def sweep() -> None:
        """Hyperparameter sweeps on Optuna: `vitcore sweep SWEEP_FILE [--trials N] [--jobs J]`.

        Every trial is an ordinary run version under <output_dir>/<sweep name>/trial-<N>/v1;
        hopeless trials are pruned after an epoch; a killed sweep continues when started again.
        See docs/TUNING.md.
        """

    @sweep.command("run")
    @click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--trials", type=click.IntRange(min=1), default=None,
                  help="Trials to finish (completed or pruned); default the sweep file's.")
    @click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Trials run at once on this machine, each in its own process (own cores / GPU).")
    @click.option("--storage", default=None, metavar="URL",
                  help="Optuna storage, e.g. postgresql://user@host/db to share the study between machines "
                       "(default: SQLite in the sweep folder).")
    @click.option("--no-report", is_flag=True, help="Do not draw the plots and report.html at the end.")
    def run(sweep_file: Path, trials: int | None, jobs: int, storage: str | None, no_report: bool) -> None:
        """Run (or continue) the sweep SWEEP_FILE until its trial count or time budget."""
        from vitcore_sweep.prepare import prepare
        from vitcore_sweep.runner import run_sweep

        prepared = prepare(sweep_file, trials)
        outcome = run_sweep(prepared, jobs, storage, echo=click.echo)
        if outcome.interrupted:
            click.echo(f"Interrupted: run `vitcore sweep {sweep_file}` again to continue the sweep "
                       f"(finished trials are kept, interrupted ones resume).", err=True)
            raise SystemExit(130)
        if outcome.stopped_reason:
            click.echo(f"Stopped: {outcome.stopped_reason}.")
        if not no_report:
            _print_report(prepared.sweep_dir, storage)
        failed = outcome.stopped_reason and "failed in a row" in outcome.stopped_reason
        if failed:
            from vitcore.api import VitcoreError

            raise VitcoreError(f"sweep {prepared.name}: {outcome.stopped_reason}")

    @sweep.command("validate")
    @click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
    def validate(sweep_file: Path) -> None:
        """Check SWEEP_FILE against its base spec without running anything (exit 2 on a problem)."""
        from vitcore_sweep.prepare import prepare

        p = prepare(sweep_file)
        trials = f"{p.trials} trials" if p.trials else "no trial limit"
        budget = f", time budget {p.time_budget_s:g} s" if p.time_budget_s else ""
        click.echo(f"{sweep_file}: valid: sweep {p.name} over {len(p.file.space)} parameter(s), {trials}{budget}, "
                   f"{p.direction} {p.metric}, sampler {p.file.sampler.type}, pruner {p.file.pruner.type}; "
                   f"trials go to {p.sweep_dir}")
        for path, dim in p.file.space.items():
            click.echo(f"  {path}: {dim.describe()}")

    @sweep.command("show")
    @click.argument("sweep_dir", type=click.Path(path_type=Path))
    @click.option("--storage", default=None, metavar="URL", help="The study's storage, if not the one it was run with.")
    @click.option("--json", "as_json", is_flag=True, help="Print the trials as JSON.")
    @click.option("--no-plots", is_flag=True, help="Skip Optuna's plots (the table and report only).")
    def show(sweep_dir: Path, storage: str | None, as_json: bool, no_plots: bool) -> None:
        """The trials of SWEEP_DIR (a table), the best one (tagged `best`), Optuna's plots as PNG and
        a self-contained report.html. SWEEP_DIR may also be the sweep file."""
        if sweep_dir.is_file():
            from vitcore_sweep.prepare import prepare

            sweep_dir = prepare(sweep_dir).sweep_dir
        _print_report(sweep_dir, storage, as_json=as_json, plots=not no_plots)


def _print_report(sweep_dir: Path, storage: str | None, as_json: bool = False, plots: bool = True) -> None:
    from vitcore_sweep.report import build_report, summary_lines

    report = build_report(sweep_dir, storage, plots=plots)
    if as_json:
        click.echo(json.dumps({"best": report.best, "trials": report.rows, "trial_epochs": report.trial_epochs,
                               "planned_epochs": report.planned_epochs, "report": str(report.html),
                               "plots": [str(p) for p in report.plots]}, indent=2, default=str))
        return
    click.echo("\n".join(summary_lines(report)))
