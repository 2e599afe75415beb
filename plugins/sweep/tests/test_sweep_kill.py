"""Acceptance: a sweep killed with SIGKILL mid-trial, started again, reaches its trial count;
the finished trial is kept as it was and the interrupted one resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vitcore.api import run_status

SWEEP = {
    "name": "killed",
    "trials": 2,
    "sampler": {"type": "random", "seed": 1},
    "pruner": "none",
    "space": {"train.lr": {"loguniform": [1.0e-3, 5.0e-3]}, "model.depth": {"int": [1, 2]}},
}


def _epochs_logged(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    return sum('"event": "epoch"' in line for line in path.read_text().splitlines())


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_sigkilled_sweep_continues_without_repeating_a_finished_trial(tmp_path, make_sweep, sweep_env,
                                                                        vitcore_cli, study_of):
    # Four epochs per trial: the kill lands after trial 1's first epoch, well before its end.
    path = make_sweep(tmp_path, SWEEP, epochs=4)
    sweep_dir = tmp_path / "runs" / "killed"
    first = subprocess.Popen([sys.executable, "-m", "vitcore", "sweep", str(path)], cwd=tmp_path, env=sweep_env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: _epochs_logged(sweep_dir / "trial-1" / "v1") >= 1, 120, "trial 1's first epoch")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    output = first.stdout.read()
    assert "trial 0 " in output and "trial 1 " not in output  # trial 0 finished, trial 1 did not
    finished_0 = (sweep_dir / "trial-0" / "v1" / "summary.json").read_text()

    # The trial's process does not outlive its sweep: it was told to stop and kept its checkpoint.
    child = study_of(sweep_dir).trials[1].user_attrs["vitcore_child"]["pid"]
    _wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
              60, "the orphaned trial to stop")
    # Interrupted as every command shows it: summary.json says so when the SIGTERM was handled,
    # and a folder nobody holds the lock of reads as interrupted even if it could not be.
    trial_1 = sweep_dir / "trial-1" / "v1"
    assert run_status(trial_1, json.loads((trial_1 / "summary.json").read_text())) == "interrupted"
    assert study_of(sweep_dir).trials[1].state.name == "RUNNING"

    again = vitcore_cli("sweep", str(path), "--no-report", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"trial 1 was interrupted: resuming {sweep_dir / 'trial-1' / 'v1'}" in again.stdout

    study = study_of(sweep_dir)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    assert (sweep_dir / "trial-0" / "v1" / "summary.json").read_text() == finished_0  # not re-run
    for number in range(2):
        versions = [p.name for p in (sweep_dir / f"trial-{number}").iterdir() if p.is_dir()]
        assert versions == ["v1"]
    resumed = json.loads((sweep_dir / "trial-1" / "v1" / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["epochs_completed"] == 4
    assert resumed["meta"]["sweep"]["params"] == study.trials[1].params
    assert "Run trial-1/v1: completed" in (sweep_dir / "trial-1" / "trial.log").read_text()
    assert sorted(study.trials[1].intermediate_values) == [1, 2, 3, 4]
