"""Real processes: SIGKILL mid-epoch then `vitcore resume`; a two-process torchrun run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vitcore.testing import make_image_folder, run_cli, tiny_spec, write_spec


def _spec(tmp_path: Path, per_class: int, **train) -> Path:
    spec = tiny_spec(tmp_path, **train)
    make_image_folder(tmp_path / "data", per_class=per_class)
    spec["data"]["val_fraction"] = 0.2
    spec["visualizers"] = []
    return write_spec(tmp_path / "spec.json", spec)


def _records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _weights(run_dir: Path, name: str) -> dict:
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)["model"]


def test_sigkill_mid_epoch_then_resume_finishes_like_an_uninterrupted_run(tmp_path):
    spec_path = _spec(tmp_path, per_class=60, epochs=3, batch_size=2)
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "vitcore", "run", str(spec_path)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if any(r["event"] == "train" and r["epoch"] == 2 for r in _records(run_dir)):
            break
        time.sleep(0.02)
    assert child.poll() is None, child.stderr.read().decode()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 1, "killed during epoch 2: the checkpoint is epoch 1's, intact"

    resumed = run_cli("resume", str(run_dir), env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["resumed"][0]["from_epoch"] == 1
    records = _records(run_dir)
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2, 3]
    steps = [r["step"] for r in records if r["event"] == "train"]
    assert steps == sorted(set(steps)), "records of the killed epoch were replaced, not duplicated"

    again = run_cli("resume", str(run_dir))
    assert again.returncode == 1 and "already finished" in again.stderr

    # The same spec without interruption ends with the same weights.
    straight = run_cli("run", str(spec_path), env={"OMP_NUM_THREADS": "1"})
    assert straight.returncode == 0, straight.stderr
    other = tmp_path / "runs" / "tiny" / "v2"
    a, b = _weights(run_dir, "last.pt"), _weights(other, "last.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("decode", ["loader", "cache"])
def test_two_process_torchrun_matches_one_process_with_the_same_global_batch(tmp_path, decode):
    # SGD: AdamW divides by the running gradient scale, so parameters whose true gradient is zero
    # (the attention key bias) turn float summation-order noise into full-size, different steps.
    spec_path = _spec(tmp_path, per_class=8, epochs=2, batch_size=4, optimizer="sgd", lr=0.05, decode=decode)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "vitcore", "run", str(spec_path)],
                            env={**env, "VITCORE_CACHE": str(tmp_path / "cache_single")},
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    # Its own cache folder: under torchrun the cache is built there, by one rank, while the other waits.
    ddp_cache = tmp_path / "cache_ddp"
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "vitcore", "run", str(spec_path)],
        env={**env, "VITCORE_CACHE": str(ddp_cache)}, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    if decode == "cache":
        decoded = ddp_cache / "decoded"
        assert len(list(decoded.glob("*.json"))) == 2, "train and val cached once each"
        assert not list(decoded.glob(".*.tmp")), "no build left temporary files"
    runs = tmp_path / "runs" / "tiny"
    assert sorted(p.name for p in runs.iterdir()) == ["v1", "v2"], "only rank 0 creates a version"
    summary = json.loads((runs / "v2" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["status"] == "completed"
    one, two = _weights(runs / "v1", "last.pt"), _weights(runs / "v2", "last.pt")
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5), key
    epochs = lambda d: [r for r in _records(d) if r["event"] == "epoch"]  # noqa: E731
    for a, b in zip(epochs(runs / "v1"), epochs(runs / "v2")):
        assert abs(a["val_acc1"] - b["val_acc1"]) < 1e-6
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-4


def test_sigterm_marks_the_run_interrupted_and_says_how_to_resume(tmp_path):
    spec_path = _spec(tmp_path, per_class=60, epochs=3, batch_size=2)
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    child = subprocess.Popen([sys.executable, "-m", "vitcore", "run", str(spec_path)],
                             env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None and not _records(run_dir):
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=180)
    assert child.returncode == 130
    assert "vitcore resume" in stderr and "Traceback" not in stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"


def test_resume_before_the_first_checkpoint_starts_over_without_duplicate_records(tmp_path):
    spec_path = _spec(tmp_path, per_class=60, epochs=1, batch_size=2)
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    child = subprocess.Popen([sys.executable, "-m", "vitcore", "run", str(spec_path)],
                             env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None and len(_records(run_dir)) < 3:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    resumed = run_cli("resume", str(run_dir), env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    steps = [r["step"] for r in _records(run_dir) if r["event"] == "train"]
    assert steps == list(range(1, len(steps) + 1))
