"""`vitcore runs list` finds the trials a real `vitcore sweep` wrote one folder down
(`runs/<sweep>/trial-<N>/v1`), next to ordinary runs, and lists them by their path."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from vitcore.testing import run_cli, tiny_spec, write_spec

pytest.importorskip("vitcore_sweep", reason="the vitcore-sweep plugin writes the sweep folder")


def test_the_trials_of_a_sweep_are_listed_beside_plain_runs(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1)
    spec["output_dir"] = "runs"
    spec["sinks"], spec["visualizers"], spec["exporters"] = [], [], []
    write_spec(tmp_path / "base.json", spec)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "lr-sweep", "base": "base.json", "trials": 2, "sampler": {"type": "random", "seed": 0},
        "pruner": "none", "space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-2]}},
    }))
    env = {"OMP_NUM_THREADS": "1", "VITCORE_CACHE": str(tmp_path / "cache")}
    swept = run_cli("sweep", "sweep.yaml", "--jobs", "1", cwd=tmp_path, env=env)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    plain = run_cli("run", "base.json", cwd=tmp_path, env=env)
    assert plain.returncode == 0, plain.stderr
    (tmp_path / "runs" / "empty" / "v1").mkdir(parents=True)  # a stray version folder: still listed, as before

    listed = run_cli("runs", "list", "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["version"], r["status"]) for r in rows] == [
        ("empty", 1, "unknown"),
        ("lr-sweep/trial-0", 1, "completed"),
        ("lr-sweep/trial-1", 1, "completed"),
        ("tiny", 1, "completed"),
    ]
    trial = rows[1]
    assert trial["path"] == os.path.join("runs", "lr-sweep", "trial-0", "v1")
    summary = json.loads((tmp_path / trial["path"] / "summary.json").read_text())
    assert summary["meta"]["sweep"]["trial"] == 0 and trial["best_value"] == summary["best_value"]

    table = run_cli("runs", "list", cwd=tmp_path, env=env).stdout
    assert "lr-sweep/trial-1" in table
    # The sweep folder itself as ROOT lists its trials by their own names, as before.
    inside = json.loads(run_cli("runs", "list", "runs/lr-sweep", "--json", cwd=tmp_path, env=env).stdout)
    assert [r["name"] for r in inside] == ["trial-0", "trial-1"]
