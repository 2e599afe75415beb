"""What a user sees when files are wrong or the disk fails: one clear message, no traceback, and a
run folder that says what happened. Every case is made real: files, a full tmpfs, child processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from vitcore.engine.checkpoint import load_torch_file
from vitcore.errors import VitcoreError
from vitcore.testing import run_cli, tiny_spec, write_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("trained")
    spec = write_spec(tmp_path / "spec.json", tiny_spec(tmp_path, epochs=1))
    done = run_cli("run", str(spec), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path, tmp_path / "runs" / "tiny" / "v1"


class _Code:
    def __reduce__(self):
        return (print, ("this would have run",))


@pytest.mark.parametrize("content, expected", [
    (b"", r"truncated or corrupt one \(0 bytes"),
    (b"\x00" * 64, r"not a PyTorch weights file|unreadable pickle|truncated or corrupt"),
    ("truncated", r"truncated or corrupt one"),
    ("code", r"refused: this weights file holds Python objects or code"),
])
def test_weights_files_that_are_not_weights_say_so(tmp_path, content, expected):
    path = tmp_path / "model.pt"
    if content == "truncated":
        torch.save({"w": torch.ones(1000)}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif content == "code":
        torch.save({"w": _Code()}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(VitcoreError, match=expected) as caught:
        load_torch_file(path, "weights file")
    assert "weights_only=False" not in str(caught.value), "vitcore never advises unsafe loading"
    assert str(path) in str(caught.value)


def test_predict_reports_each_bad_image_and_predicts_the_rest(trained):
    tmp_path, run_dir = trained
    good = sorted((tmp_path / "data" / "red").iterdir())[0]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    done = run_cli("predict", str(run_dir), str(good), str(broken), str(tmp_path / "gone.png"), "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    results = json.loads(done.stdout)
    answered = [r for r in results if "top" in r]
    assert [r["image"] for r in answered] == [str(good)] and answered[0]["top"]
    errors = {r["image"]: r["error"] for r in results if "error" in r}
    assert set(errors) == {str(broken), str(tmp_path / "gone.png")}
    assert "cannot decode image" in errors[str(broken)] and "does not exist" in errors[str(tmp_path / "gone.png")]
    assert str(broken) in done.stderr


def test_a_corrupt_tags_file_breaks_only_its_own_row(trained, tmp_path):
    _, run_dir = trained
    root = tmp_path / "runs"
    shutil.copytree(run_dir.parent, root / "tiny")
    copy = root / "tiny" / "v1"
    shutil.copytree(copy, root / "tiny" / "v2")
    (copy / "tags.json").write_text("{not json")
    done = run_cli("runs", "list", str(root), "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["version"]: r for r in json.loads(done.stdout)}
    assert rows[1]["tags"] == ["(tags.json unreadable)"] and rows[2]["tags"] == []
    assert rows[2]["status"] == "completed"


def test_an_output_dir_under_a_regular_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    spec = tiny_spec(tmp_path)
    spec["output_dir"] = str(blocker / "runs")
    done = run_cli("run", str(write_spec(tmp_path / "spec.json", spec)))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "output_dir" in done.stderr and f"{blocker} is a file, not a folder" in done.stderr


def _can_mount_tmpfs() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root to mount a small tmpfs (CI runs as root)")
def test_a_full_disk_fails_the_run_cleanly_and_it_resumes_once_there_is_space(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"tmpfs cannot be mounted here: {mounted.stderr.decode().strip()}")
    try:
        spec = tiny_spec(tmp_path, epochs=2)
        spec["model"].update(embed_dim=64, depth=2)  # its checkpoint (weights + AdamW state) cannot fit
        spec["sinks"], spec["visualizers"], spec["exporters"] = [], [], []
        spec["output_dir"] = str(disk / "runs")
        done = run_cli("run", str(write_spec(tmp_path / "spec.json", spec)))
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
        run_dir = disk / "runs" / "tiny" / "v1"
        assert "no space left on the device" in done.stderr and f"vitcore resume {run_dir}" in done.stderr
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "failed" and "No space left" in summary["error"]
        assert not list(run_dir.rglob(".*.tmp")), "the failed write's temp file is gone"
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        again = run_cli("resume", str(run_dir))
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_refused_pickle_in_init_from_never_advises_weights_only_false(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Code()}, evil)
    spec = tiny_spec(tmp_path)
    spec["model"]["init_from"] = str(evil)
    done = run_cli("run", str(write_spec(tmp_path / "spec.json", spec)))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "holds Python objects or code" in done.stderr and "weights_only=False" not in done.stderr
    assert "this would have run" not in done.stdout + done.stderr
