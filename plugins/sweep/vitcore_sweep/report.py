"""What a sweep found: a table of its trials, the best one (tagged ``best`` in the runs tooling),
Optuna's own plots as PNG and one self-contained HTML page beside the trials' run folders.

The study is the source of truth (it also holds trials other machines ran); each trial's run
folder, where this machine has it, adds its summary.json facts (epochs run, wall time, how it
stopped).
"""

from __future__ import annotations

import base64
import html
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitcore.api import VitcoreError, pyplot, read_json, read_tags, save_figure, tag_run, write_text_atomic
from vitcore_sweep.runner import latest_run, run_summary

BEST_TAG = "best"
#: Optuna's matplotlib plots drawn for the report: file stem -> (function name, caption).
PLOTS = {
    "optimization_history": ("plot_optimization_history", "Optimisation history: each trial's value and the best so far."),
    "intermediate_values": ("plot_intermediate_values", "Each trial's metric per epoch; pruned trials stop early."),
    "param_importances": ("plot_param_importances", "Parameter importances (how much each parameter explains the metric)."),
    "parallel_coordinate": ("plot_parallel_coordinate", "Parallel coordinates: parameters against the metric."),
    "slice": ("plot_slice", "Slice plot: the metric against each parameter."),
}


@dataclass
class SweepReport:
    sweep_dir: Path
    record: dict[str, Any]
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    trial_epochs: int
    planned_epochs: int
    plots: list[Path] = field(default_factory=list)
    skipped_plots: dict[str, str] = field(default_factory=dict)
    html: Path | None = None

    @property
    def metric(self) -> str:
        return self.record["metric"]


def find_sweep(path: Path) -> tuple[Path, dict[str, Any]]:
    """A sweep folder (holding sweep.json) and its record."""
    path = Path(path)
    if not (path / "sweep.json").is_file():
        raise VitcoreError(f"{path}: not a sweep folder (expected sweep.json in it: the folder "
                           f"`vitcore sweep SWEEP_FILE` made, e.g. runs/<sweep name>)")
    return path, read_json(path / "sweep.json")


def load_study(record: dict[str, Any], storage_url: str | None = None) -> Any:
    import optuna

    from vitcore_sweep.optuna_setup import open_storage

    url = storage_url or record["storage"]
    try:
        return optuna.load_study(study_name=record["study"], storage=open_storage(url, heartbeat=False))
    except KeyError:
        raise VitcoreError(f"study {record['study']!r} not found in {url}") from None


def trial_rows(study: Any, record: dict[str, Any], sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per trial: number, state, how its run ended, parameters, metric, epochs, wall time."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        run_root = Path(attrs.get("vitcore_run_root", sweep_dir / f"trial-{trial.number}"))
        run_dir = latest_run(run_root)
        summary = run_summary(run_dir)
        facts = attrs.get("vitcore_run") or {}
        values = trial.intermediate_values
        value = trial.value if trial.value is not None else (values[max(values)] if values else None)
        status = summary.get("status") or facts.get("status") or trial.state.name.lower()
        epochs = summary.get("epochs_completed", facts.get("epochs"))
        wall = summary.get("wall_time_s", facts.get("wall_time_s"))
        if wall is None and trial.duration is not None:
            wall = trial.duration.total_seconds()
        stopped = summary.get("stopped") or facts.get("stopped") or {}
        rows.append({
            "number": trial.number, "state": trial.state.name.lower(), "status": status,
            "params": dict(trial.params), "value": value,
            "epochs": epochs if epochs is not None else (len(values) or None),
            "planned_epochs": int(trial.params.get("train.epochs", record["base"]["train"]["epochs"])),
            "wall_time_s": wall, "stopped_epoch": stopped.get("epoch"),
            "run_dir": str(run_dir) if run_dir else facts.get("run_dir"),
            "report": str(run_dir / "report.html") if run_dir and (run_dir / "report.html").is_file() else None,
        })
    return rows


def best_row(study: Any, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        number = study.best_trial.number
    except ValueError:  # no completed trial yet
        return None
    return next(r for r in rows if r["number"] == number)


def tag_best(rows: list[dict[str, Any]], best: dict[str, Any] | None) -> None:
    """Move the ``best`` tag to the best trial's run (``vitcore runs list runs/<sweep>`` shows it)."""
    for row in rows:
        run_dir = Path(row["run_dir"]) if row["run_dir"] else None
        if run_dir is None or not run_dir.is_dir():
            continue
        is_best = best is not None and row["number"] == best["number"]
        has = BEST_TAG in read_tags(run_dir)
        if is_best and not has:
            tag_run(run_dir, BEST_TAG)
        elif has and not is_best:
            tag_run(run_dir, BEST_TAG, remove=True)


def draw_plots(study: Any, out_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """Optuna's matplotlib visualisations as PNG; a plot the study cannot give yet is skipped with
    the reason (e.g. importances need two completed trials)."""
    import optuna
    import optuna.visualization.matplotlib as ovm

    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn, skipped = [], {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    for stem, (function, _) in PLOTS.items():
        if stem == "param_importances" and len(complete) < 2:
            skipped[stem] = "needs at least 2 completed trials"
            continue
        if not complete and stem != "intermediate_values":
            skipped[stem] = "no completed trial yet"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = getattr(ovm, function)(study)
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                plt.close("all")
                skipped[stem] = str(exc)
                continue
        first = axes.flat[0] if hasattr(axes, "flat") else axes
        drawn.append(save_figure(first.figure, out_dir / f"{stem}.png"))
    return drawn, skipped


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _status_text(row: dict[str, Any]) -> str:
    if row["state"] == "pruned" and row["status"] == "pruned":
        return f"pruned@{row['stopped_epoch'] or row['epochs']}"
    if row["state"] == "pruned":
        return f"pruned ({row['status']})"
    if row["state"] == "complete":
        return row["status"] if row["status"] != "completed" else "complete"
    return row["state"] if row["state"] != "fail" else f"failed ({row['status']})"


def table(rows: list[dict[str, Any]], metric: str) -> str:
    """The trials as a text table."""
    params = list(dict.fromkeys(p for row in rows for p in row["params"]))
    header = ["#", "status", *params, metric, "epochs", "wall s"]
    lines = [header] + [
        [str(r["number"]), _status_text(r), *(_cell(r["params"].get(p)) for p in params), _cell(r["value"]),
         _cell(r["epochs"]), _cell(round(r["wall_time_s"], 1) if r["wall_time_s"] is not None else None)]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_html(report: SweepReport) -> Path:
    """``report.html`` in the sweep folder: everything embedded, links to the trials' own reports."""
    r, esc = report, html.escape
    params = list(dict.fromkeys(p for row in r.rows for p in row["params"]))
    head = "".join(f"<th>{esc(h)}</th>" for h in ["#", "status", *params, r.metric, "epochs", "wall s", "run"])
    body = []
    for row in r.rows:
        link = "-"
        target = row["report"] or (row["run_dir"] and str(Path(row["run_dir"]) / "summary.json"))
        if target:
            try:
                href = Path(target).relative_to(r.sweep_dir).as_posix()
            except ValueError:
                href = Path(target).as_uri()
            link = f"<a href=\"{esc(href)}\">{'report' if row['report'] else 'summary'}</a>"
        best = " class=\"best\"" if r.best and row["number"] == r.best["number"] else ""
        cells = [str(row["number"]), _status_text(row), *(_cell(row["params"].get(p)) for p in params),
                 _cell(row["value"]), _cell(row["epochs"]),
                 _cell(round(row["wall_time_s"], 1) if row["wall_time_s"] is not None else None)]
        body.append(f"<tr{best}>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + f"<td>{link}</td></tr>")
    figures = "".join(
        f"<figure><img alt=\"{esc(p.stem)}\" src=\"{_image(p)}\"><figcaption>{esc(PLOTS[p.stem][1])}</figcaption></figure>"
        for p in r.plots
    )
    skipped = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in r.skipped_plots.items())
    if r.best:
        best_text = (f"Best: trial {r.best['number']}, {esc(r.metric)} {r.best['value']:.4f} with "
                     + ", ".join(f"{esc(k)} = {esc(_cell(v))}" for k, v in r.best["params"].items())
                     + (f" (<code>{esc(r.best['run_dir'])}</code>, tagged <code>{BEST_TAG}</code>)"
                        if r.best["run_dir"] else ""))
    else:
        best_text = "No completed trial yet."
    space = "".join(f"<li><code>{esc(k)}</code>: {esc(json.dumps(v))}</li>" for k, v in r.record["space"].items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sweep {esc(r.record['name'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 72em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right; }}
tr.best {{ background: #e8f5e9; font-weight: bold; }} figure {{ display: inline-block; margin: 1em; }}
img {{ max-width: 34em; }} code {{ background: #f4f4f4; padding: 0 .2em; }}
</style></head><body>
<h1>Sweep {esc(r.record['name'])}</h1>
<p>Base spec <code>{esc(r.record['base_path'])}</code>; {esc(r.record['direction'])} {esc(r.metric)};
sampler {esc(r.record['sampler']['type'])}, pruner {esc(r.record['pruner']['type'])};
study <code>{esc(r.record['study'])}</code> in <code>{esc(r.record['storage'])}</code>.</p>
<ul>{space}</ul>
<p>{best_text}</p>
<p>Trial-epochs run: {r.trial_epochs} of {r.planned_epochs} planned for the finished trials{_saved(r)}.</p>
<table><tr>{head}</tr>{''.join(body)}</table>
{figures}
{f'<p>Not drawn:</p><ul>{skipped}</ul>' if skipped else ''}
</body></html>
"""
    path = r.sweep_dir / "report.html"
    write_text_atomic(path, page)
    return path


def _saved(report: SweepReport) -> str:
    if not report.planned_epochs:
        return ""
    return f" (pruning saved {100 * (1 - report.trial_epochs / report.planned_epochs):.0f}%)"


def build_report(sweep_dir: Path, storage_url: str | None = None, plots: bool = True) -> SweepReport:
    """Read the study, tag the best trial's run, draw the plots and write report.html."""
    sweep_dir, record = find_sweep(sweep_dir)
    study = load_study(record, storage_url)
    rows = trial_rows(study, record, sweep_dir)
    best = best_row(study, rows)
    tag_best(rows, best)
    finished = [r for r in rows if r["state"] in ("complete", "pruned")]
    report = SweepReport(
        sweep_dir=sweep_dir, record=record, rows=rows, best=best,
        trial_epochs=sum(r["epochs"] or 0 for r in finished),
        planned_epochs=sum(r["planned_epochs"] for r in finished),
    )
    if plots:
        report.plots, report.skipped_plots = draw_plots(study, sweep_dir / "plots")
    report.html = write_html(report)
    return report


def summary_lines(report: SweepReport) -> list[str]:
    """What ``vitcore sweep show`` (and the end of a sweep) prints."""
    states: dict[str, int] = {}
    for row in report.rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in states.items()) or "no trials"
    lines = [f"Sweep {report.record['name']}: {len(report.rows)} trials ({counts})", "", table(report.rows, report.metric), ""]
    if report.best:
        b = report.best
        params = " ".join(f"{k}={_cell(v)}" for k, v in b["params"].items())
        lines.append(f"Best: trial {b['number']}  {report.metric} {b['value']:.4f}  {params}")
        if b["run_dir"]:
            lines.append(f"  run {b['run_dir']} (tagged {BEST_TAG})")
    else:
        lines.append("Best: no completed trial yet")
    lines.append(f"Trial-epochs run: {report.trial_epochs} of {report.planned_epochs} planned{_saved(report)}")
    lines.append(f"Report: {report.html}")
    return lines
