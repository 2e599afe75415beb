"""The controller's decisions, in-process on a real study (no trial processes): when no new trial
starts, and how a trial left by a dead sweep is taken over."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from vitcore_sweep import processes
from vitcore_sweep.prepare import prepare
from vitcore_sweep.runner import OWNER, Controller, prepare_folder

SWEEP = {"name": "c", "trials": 3, "pruner": "none",
         "space": {"train.lr": {"loguniform": [1.0e-3, 5.0e-3]}, "model.depth": {"int": [1, 2]}}}


def _controller(tmp_path: Path, make_sweep, **fields) -> Controller:
    sweep = prepare(make_sweep(tmp_path, {**SWEEP, **fields}))
    prepare_folder(sweep, sweep.storage_url)
    controller = Controller(sweep, 1, sweep.storage_url, lambda line: None)
    controller.open_study()
    return controller


def _dead_process() -> dict:
    """The identity of a process that has ended (as a SIGKILLed sweep's is)."""
    proc = subprocess.Popen(["sleep", "0"])
    identity = processes.identity(proc.pid)
    proc.wait()
    return identity


def test_no_new_trial_starts_once_the_time_budget_is_spent(tmp_path, make_sweep):
    controller = _controller(tmp_path, make_sweep, trials=None, time_budget="2s")
    controller.started = time.monotonic()  # as run() does when the trials start
    assert controller.next_job().number == 0  # within the budget
    controller.started = time.monotonic() - 3
    assert controller.next_job() is None
    assert controller.outcome.stopped_reason == "the time budget (2 s) is spent"


def test_a_trial_that_ended_while_the_sweep_was_down_is_recorded_not_run_again(tmp_path, make_sweep):
    first = _controller(tmp_path, make_sweep)
    job = first.next_job()
    first.storage.set_trial_user_attr(job.trial_id, OWNER, _dead_process())  # the sweep was killed
    run_dir = first.sweep.sweep_dir / "trial-0" / "v1"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text("{}")
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "best_value": 0.75,
                                                      "epochs_completed": 3}))
    again = _controller(tmp_path, make_sweep)
    again.recover()
    assert again.orphans == []  # nothing to run
    trial = again.study.trials[0]
    assert trial.state.name == "COMPLETE" and trial.value == 0.75
    assert trial.user_attrs["vitcore_run"]["run_dir"] == str(run_dir)


def test_an_interrupted_trial_is_resumed_and_one_of_a_live_sweep_is_left_alone(tmp_path, make_sweep):
    first = _controller(tmp_path, make_sweep)
    killed, running = first.next_job(), first.next_job()
    first.storage.set_trial_user_attr(killed.trial_id, OWNER, _dead_process())
    run_dir = first.sweep.sweep_dir / "trial-0" / "v1"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text("{}")
    (run_dir / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    again = _controller(tmp_path, make_sweep)
    again.recover()  # trial 1's owner (this very process) is alive: not taken over
    assert [(j.number, j.resume_dir) for j in again.orphans] == [(0, run_dir)]
    assert again.command(again.orphans[0])[-2:] == ["resume", str(run_dir)]
    assert again.study.trials[0].user_attrs[OWNER]["pid"] == processes.identity()["pid"]
    assert [t.state.name for t in again.study.trials] == ["RUNNING", "RUNNING"]


def test_a_grid_sweep_tries_each_point_once_and_stops_at_the_grid_size(tmp_path, make_sweep):
    space = {"train.lr": {"choice": [0.001, 0.003]}, "model.depth": {"int": [1, 2]}}
    controller = _controller(tmp_path, make_sweep, sampler={"type": "grid", "seed": 0}, trials=10, space=space)
    assert controller.sweep.trials == 4  # capped to the grid
    jobs = [controller.next_job() for _ in range(4)]
    for job in jobs:
        controller.record(job.number, TrialState.COMPLETE, 0.5)
    assert sorted((j.params["train.lr"], j.params["model.depth"]) for j in jobs) == [
        (0.001, 1), (0.001, 2), (0.003, 1), (0.003, 2)]
    assert controller.next_job() is None


@pytest.mark.parametrize("sampler,pruner", [
    ("random", "hyperband"), ({"type": "cmaes", "seed": 1}, "successive_halving"),
    ({"type": "tpe", "multivariate": True}, {"type": "percentile", "percentile": 25.0}),
])
def test_every_sampler_and_pruner_builds_and_asks(tmp_path, make_sweep, sampler, pruner):
    controller = _controller(tmp_path, make_sweep, sampler=sampler, pruner=pruner)
    job = controller.next_job()
    assert 1e-3 <= job.params["train.lr"] <= 5e-3 and job.params["model.depth"] in (1, 2)
