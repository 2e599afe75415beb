"""Acceptance: a sweep of 6 trials over lr and depth, two at a time, on the tiny shapes data.

One sweep is run for the module (about half a minute on two cores) and every test reads what it
left: the trials' run folders, the study, the tags, the report.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

#: Trials 0 and 1 (good lrs) start together; trial 2 (lr 10, cannot train) starts when one of them
#: has completed, so the median pruner (after 1 completed trial) has something to compare with.
SWEEP: dict[str, Any] = {
    "name": "lr-depth",
    "trials": 6,
    "sampler": {"type": "tpe", "seed": 0},
    "pruner": {"type": "median", "n_startup_trials": 1},
    "space": {"train.lr": {"loguniform": [1.0e-3, 10.0]}, "model.depth": {"int": [1, 2]}},
    "enqueue": [{"train.lr": 0.003, "model.depth": 2}, {"train.lr": 0.003, "model.depth": 1},
                {"train.lr": 10.0, "model.depth": 1}],
}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, make_sweep, vitcore_cli) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("sweep-run")
    path = make_sweep(folder, SWEEP)
    done = vitcore_cli("sweep", str(path), "--jobs", "2", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"folder": folder, "dir": folder / "runs" / "lr-depth", "path": path, "out": done.stdout}


def _summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def test_every_trial_is_a_run_version_carrying_its_parameters(sweep, study_of):
    study = study_of(sweep["dir"])
    trials = study.get_trials()
    assert len(trials) == 6 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    for trial in trials:
        run_root = sweep["dir"] / f"trial-{trial.number}"
        assert [p.name for p in run_root.iterdir() if p.is_dir()] == ["v1"]  # each trial ran once
        summary = _summary(run_root / "v1")
        assert summary["meta"]["sweep"] == {"name": "lr-depth", "trial": trial.number, "params": trial.params}
        spec = json.loads((run_root / "v1" / "spec.json").read_text())
        assert spec["train"]["lr"] == trial.params["train.lr"]
        assert spec["model"]["depth"] == trial.params["model.depth"]
        assert (run_root / "v1" / "metrics.jsonl").is_file() and (run_root / "v1" / "checkpoints" / "last.pt").is_file()
        if trial.state.name == "COMPLETE":
            assert summary["status"] == "completed" and trial.value == summary["best_value"]
    # One progress line per finished trial, with its parameters and the best so far.
    lines = [line for line in sweep["out"].splitlines() if line.startswith("trial ")]
    assert len(lines) == 6 and all("train.lr=" in line and "best " in line for line in lines)


def test_the_unlearnable_lr_is_pruned_by_the_median_pruner(sweep, study_of):
    study = study_of(sweep["dir"])
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    assert 2 in [t.number for t in pruned]  # lr 10, after trial 0 or 1 completed
    for trial in pruned:
        summary = _summary(sweep["dir"] / f"trial-{trial.number}" / "v1")
        assert summary["status"] == "pruned"
        assert summary["stopped"]["epoch"] < 3 and summary["epochs_completed"] == summary["stopped"]["epoch"]
        assert "median pruner" in summary["stopped"]["reason"]
    bad = next(t for t in pruned if t.number == 2)
    good = [t for t in study.get_trials() if t.number in (0, 1)]
    assert all(bad.intermediate_values[1] < t.intermediate_values[1] for t in good)
    assert f"trial 2   pruned at epoch {bad.last_step}" in sweep["out"]


def test_the_best_trial_is_tagged_best(sweep, study_of, vitcore_cli):
    study = study_of(sweep["dir"])
    runs = vitcore_cli("runs", "list", str(sweep["dir"]), "--json")
    rows = json.loads(runs.stdout)
    tagged = [row for row in rows if "best" in row["tags"]]
    assert len(tagged) == 1 and tagged[0]["name"] == f"trial-{study.best_trial.number}"
    assert tagged[0]["best_value"] == study.best_value == max(r["best_value"] for r in rows if r["status"] == "completed")


def test_two_jobs_run_two_trials_at_once_and_each_trial_once(sweep, study_of):
    intervals = []
    for run_root in sorted(sweep["dir"].glob("trial-*")):
        summary = _summary(run_root / "v1")
        intervals.append((datetime.fromisoformat(summary["started"]), datetime.fromisoformat(summary["finished"])))
    overlapping = [(a, b) for i, a in enumerate(intervals) for b in intervals[i + 1:]
                   if max(a[0], b[0]) < min(a[1], b[1])]
    assert overlapping, intervals
    study = study_of(sweep["dir"])
    numbers = [t.number for t in study.get_trials()]
    assert numbers == list(range(6)) and len(intervals) == 6
    run_dirs = [t.user_attrs["vitcore_run"]["run_dir"] for t in study.get_trials()]
    assert len(set(run_dirs)) == 6


def test_show_draws_optunas_plots_and_a_self_contained_report(sweep, vitcore_cli, study_of):
    shown = vitcore_cli("sweep", "show", str(sweep["dir"]))
    assert shown.returncode == 0, shown.stderr
    best = study_of(sweep["dir"]).best_trial
    assert f"Best: trial {best.number}  val_acc1 {best.value:.4f}" in shown.stdout
    table = shown.stdout.split("\n\n")[1].splitlines()
    assert table[0].split() == ["#", "status", "train.lr", "model.depth", "val_acc1", "epochs", "wall", "s"]
    assert len(table) == 7 and "pruned@1" in shown.stdout
    plots = {p.name: p.read_bytes() for p in (sweep["dir"] / "plots").glob("*.png")}
    assert {"optimization_history.png", "intermediate_values.png", "param_importances.png",
            "parallel_coordinate.png", "slice.png"} <= set(plots)
    assert all(data.startswith(b"\x89PNG") and len(data) > 5000 for data in plots.values())
    page = (sweep["dir"] / "report.html").read_text()
    assert page.count("src=\"data:image/png;base64,") == len(plots)
    assert "src=\"http" not in page and "<link" not in page and "<script" not in page
    assert 'class="best"' in page and "trial-2/v1/summary.json" in page


def test_starting_a_finished_sweep_again_runs_nothing(sweep, vitcore_cli, study_of):
    again = vitcore_cli("sweep", str(sweep["path"]), "--no-report", cwd=sweep["folder"])
    assert again.returncode == 0, again.stderr
    assert "trial " not in again.stdout.replace("trials", "")
    assert len(study_of(sweep["dir"]).get_trials()) == 6
