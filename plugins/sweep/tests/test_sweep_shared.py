"""The same sweep command started twice at once (as on two machines sharing a storage) shares
the study: together they run the requested number of trials, each once. (Both start at once,
so each takes one of the two trials.)"""

from __future__ import annotations

import json
import subprocess
import sys

SWEEP = {
    "name": "shared",
    "trials": 2,
    "sampler": {"type": "random", "seed": 3},
    "pruner": "none",
    "space": {"train.lr": {"loguniform": [1.0e-3, 5.0e-3]}, "model.depth": {"int": [1, 2]}},
}


def test_two_sweep_processes_share_one_study(tmp_path, make_sweep, sweep_env, study_of):
    path = make_sweep(tmp_path, SWEEP, epochs=2)
    command = [sys.executable, "-m", "vitcore", "sweep", str(path), "--no-report"]
    procs = [subprocess.Popen(command, cwd=tmp_path, env=sweep_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    ran = [[line.split()[1] for line in out.splitlines() if line.startswith("trial ")] for out in outputs]
    assert all(ran) and sorted(ran[0] + ran[1]) == ["0", "1"], outputs  # both worked, no trial twice
    sweep_dir = tmp_path / "runs" / "shared"
    study = study_of(sweep_dir)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    for trial in study.trials:
        summary = json.loads((sweep_dir / f"trial-{trial.number}" / "v1" / "summary.json").read_text())
        assert summary["meta"]["sweep"]["params"] == trial.params


def test_a_restarted_sweep_does_not_replay_its_seed(tmp_path, make_sweep):
    """A seeded sampler starts where the study is (seed + the trials already there): a restarted
    sweep must not propose the first trials' parameters again."""
    from vitcore_sweep.prepare import prepare
    from vitcore_sweep.runner import Controller, prepare_folder

    sweep = prepare(make_sweep(tmp_path, SWEEP), trials=4)
    prepare_folder(sweep, sweep.storage_url)
    first = Controller(sweep, 1, sweep.storage_url, print)
    first.open_study()
    earlier = [first.next_job(), first.next_job()]
    for job in earlier:
        first.study.tell(job.number, 0.5)
    again = Controller(sweep, 1, sweep.storage_url, print)  # the command started again
    again.open_study()
    later = again.next_job()
    assert later.number == 2 and later.params not in [job.params for job in earlier]
