"""The CLI commands on a real trained run: runs list/show, evaluate, predict, plot, dashboard."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from vitcore.testing import make_image_folder, run_cli, tiny_spec, write_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """One real run (through `python -m vitcore run`) shared by the tests of this module."""
    tmp_path = tmp_path_factory.mktemp("cli")
    spec = tiny_spec(tmp_path, epochs=3)
    path = write_spec(tmp_path / "spec.json", spec)
    result = run_cli("run", str(path), env={"VITCORE_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "run directory" in result.stdout and "best val_acc1" in result.stdout
    return tmp_path, tmp_path / "runs" / "tiny" / "v1"


def test_runs_list_and_show(trained):
    root, run_dir = trained
    listed = run_cli("runs", "list", str(root / "runs"), "--json")
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["version"], r["status"], r["epochs"]) for r in rows] == [("tiny", 1, "completed", 3)]
    table = run_cli("runs", "list", str(root / "runs"))
    assert "tiny" in table.stdout and "completed" in table.stdout
    shown = json.loads(run_cli("runs", "show", str(root / "runs" / "tiny")).stdout)
    assert shown["summary"]["version"] == "v1" and shown["spec"]["train"]["epochs"] == 3
    missing = run_cli("runs", "show", str(root / "nowhere"))
    assert missing.returncode == 1 and "not a run directory" in missing.stderr


def test_evaluate_on_a_folder(trained, tmp_path):
    _, run_dir = trained
    folder = make_image_folder(tmp_path / "holdout", classes=("red", "blue"), per_class=4)
    result = run_cli("evaluate", str(run_dir), "--data", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == 8 and report["classes"] == ["blue", "green", "red"]
    assert report["acc1"] >= 0.75
    assert sum(map(sum, report["confusion"])) == 8
    text = run_cli("evaluate", str(run_dir), "--data", str(folder))
    assert "top-1" in text.stdout and "confusion" in text.stdout

    wrong = make_image_folder(tmp_path / "wrong", classes=("yellow",), per_class=1)
    bad = run_cli("evaluate", str(run_dir), "--data", str(wrong))
    assert bad.returncode == 1 and "yellow" in bad.stderr and "Traceback" not in bad.stderr


def test_predict_prints_top_k(trained, tmp_path):
    _, run_dir = trained
    folder = make_image_folder(tmp_path / "imgs", classes=("green",), per_class=2)
    images = sorted(str(p) for p in (folder / "green").iterdir())
    result = run_cli("predict", str(run_dir), *images, "--top-k", "2", "--json")
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)
    assert [p["image"] for p in predictions] == images
    for p in predictions:
        assert len(p["top"]) == 2 and p["top"][0]["label"] == "green"
        assert p["top"][0]["probability"] >= p["top"][1]["probability"]
    missing = run_cli("predict", str(run_dir), str(tmp_path / "nope.png"))
    assert missing.returncode != 0 and "nope.png" in missing.stderr


def test_plot_redraws_from_metrics(trained):
    _, run_dir = trained
    for png in (run_dir / "plots").glob("*.png"):
        png.unlink()
    result = run_cli("plot", str(run_dir))
    assert result.returncode == 0, result.stderr
    drawn = [Path(line) for line in result.stdout.splitlines()]
    assert drawn and all(p.is_file() and p.stat().st_size > 1000 for p in drawn)


def test_export_reexports_the_best_model_in_a_named_format(trained):
    _, run_dir = trained
    target = run_dir / "exports" / "model.pt"
    target.unlink()
    result = run_cli("export", str(run_dir), "--format", "torch")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target)
    payload = torch.load(target, weights_only=True)
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert all(torch.equal(payload["state_dict"][k], best["model"][k]) for k in best["model"])
    unknown = run_cli("export", str(run_dir), "--format", "onnxx")
    assert unknown.returncode == 2 and "unknown exporter 'onnxx'" in unknown.stderr


def test_model_summary_of_a_run_and_of_a_spec(trained):
    root, run_dir = trained
    from_run = run_cli("model", "summary", str(run_dir), "--json")
    assert from_run.returncode == 0, from_run.stderr
    table = json.loads(from_run.stdout)
    assert table["geometry"]["grid"] == [4, 4] and table["rows"][-1]["output_shape"] == [1, 3]
    from_spec = run_cli("model", "summary", str(root / "spec.json"), "--num-classes", "7", "--depth", "1")
    assert from_spec.returncode == 0, from_spec.stderr
    heads = next(line for line in from_spec.stdout.splitlines() if line.strip().startswith("heads"))
    assert heads.split()[2] == "[1," and heads.split()[3] == "7]"
    assert "Geometry: 32x32 input" in from_spec.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dashboard_serves_tensorboard_on_the_runs(trained):
    """The core's own `vitcore dashboard` (TensorBoard), what is left without the vitcore-dashboard
    plugin, which replaces it: loaded with no plugins here."""
    root, _ = trained
    port = _free_port()
    child = subprocess.Popen([sys.executable, "-m", "vitcore", "dashboard", str(root / "runs"), "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "VITCORE_LOAD_PLUGINS": ""})
    try:
        body = ""
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2) as response:
                    body = response.read().decode()
                if "tiny" in body:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert "tiny/v1/tb" in body
    finally:
        child.terminate()
        child.wait(timeout=30)
