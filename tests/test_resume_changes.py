"""`vitcore resume RUN_DIR --set ...`: a diverged run recovers with a lower rate and clipping; a
finished one gets more epochs; anything that would invalidate the checkpoint is refused."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from vitcore.cli import main
from vitcore.testing import tiny_spec, write_spec


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def test_a_diverged_run_resumes_with_a_lower_rate_and_clipping(tmp_path):
    spec = tiny_spec(tmp_path, epochs=3, lr=1e9)
    spec["train"]["optimizer"] = "sgd"
    diverged = _cli("run", str(write_spec(tmp_path / "spec.json", spec)))
    assert diverged.exit_code == 3, diverged.output
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    assert _summary(run_dir)["status"] == "diverged"

    refused = _cli("resume", str(run_dir), "--set", "model.depth=2", "--set", "train.lr=0.003")
    assert refused.exit_code == 2 and "model.depth" in refused.output and "cannot change when resuming" in refused.output
    assert "train.lr" in refused.output, "the message lists what may change"

    resumed = _cli("resume", str(run_dir), "--set", "train.lr=0.003", "--set", "train.clip_grad_norm=1.0")
    assert resumed.exit_code == 0, resumed.output
    summary = _summary(run_dir)
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["resumed"][-1]["changed"] == {"train.clip_grad_norm": [None, 1.0], "train.lr": [1e9, 0.003]}
    saved = json.loads((run_dir / "spec.json").read_text())
    assert saved["train"]["lr"] == 0.003 and saved["train"]["clip_grad_norm"] == 1.0, "spec.json says what it trains with"
    weights = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_a_finished_run_continues_for_more_epochs_at_the_new_rate(tmp_path):
    path = write_spec(tmp_path / "spec.json", tiny_spec(tmp_path, epochs=2))
    assert _cli("run", str(path)).exit_code == 0
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    again = _cli("resume", str(run_dir))
    assert again.exit_code == 1 and "already finished" in again.output and "train.epochs" in again.output

    before = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    rate_before = before["optimizer"]["param_groups"][0]["lr"]
    more = _cli("resume", str(run_dir), "--set", "train.epochs=3", "--set", "train.lr=0.0015")
    assert more.exit_code == 0, more.output
    summary = _summary(run_dir)
    assert summary["epochs_completed"] == 3 and summary["status"] == "completed"
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if r["event"] == "epoch"] == [1, 2, 3]
    after = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert after["scheduler"]["base_lrs"][0] == before["scheduler"]["base_lrs"][0] / 2, "the schedule's peak halves"
    assert rate_before > 0 and after["epoch"] == 3


def test_resume_works_from_another_working_directory(tmp_path):
    """The spec used relative paths from its own folder; a scheduler resumes from elsewhere."""
    from vitcore.testing import make_image_folder, run_cli

    work = tmp_path / "work"
    make_image_folder(work / "images")
    spec = tiny_spec(tmp_path, epochs=1)
    spec["data"]["root"] = "images"
    spec["output_dir"] = "out"
    path = write_spec(work / "spec.json", spec)
    first = run_cli("run", str(path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = work / "out" / "tiny" / "v1"
    elsewhere = tmp_path / "scheduler"
    elsewhere.mkdir()
    again = run_cli("resume", str(run_dir), "--set", "train.epochs=2", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert _summary(run_dir)["epochs_completed"] == 2
