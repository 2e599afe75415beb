"""Ctrl-C on a real `vitcore run`: exit code 130, the run marked interrupted, its last checkpoint
kept, and a `vitcore resume ...` line that names the run's own folder (not a placeholder), which
continues the run when pasted as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from vitcore.testing import make_image_folder, tiny_spec, write_spec


def _wait_for_line(child: subprocess.Popen, pattern: str, timeout: float) -> list[str]:
    """Read the child's stdout up to a line matching ``pattern``; every line read so far."""
    seen: list[str] = []
    deadline = time.time() + timeout
    assert child.stdout is not None
    while time.time() < deadline:
        line = child.stdout.readline()
        if not line:  # the child ended before printing it
            break
        seen.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s; stdout so far:\n" + "\n".join(seen))


def test_ctrl_c_names_the_real_run_folder_in_the_resume_line(tmp_path):
    spec = tiny_spec(tmp_path, epochs=3, batch_size=2)
    make_image_folder(tmp_path / "data", per_class=60)  # ~60 steps an epoch: time to be interrupted in one
    spec["data"]["val_fraction"] = 0.2
    spec["sinks"], spec["visualizers"], spec["exporters"] = [], [], []
    spec_path = write_spec(tmp_path / "spec.json", spec)
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VITCORE_PROGRESS_SECONDS": "0"}  # a step line per record
    with open(tmp_path / "stderr.txt", "w+", encoding="utf-8") as stderr_file:
        child = subprocess.Popen([sys.executable, "-m", "vitcore", "run", str(spec_path)], cwd=tmp_path, env=env,
                                 stdout=subprocess.PIPE, stderr=stderr_file, text=True)
        try:
            # The first step of epoch 2: epoch 1 ended, so its last.pt is on disk.
            _wait_for_line(child, r"^epoch 2/3 step 1/", timeout=240)
            child.send_signal(signal.SIGINT)
            child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        stderr_file.seek(0)
        stderr = stderr_file.read()

    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr and "RUN_DIR" not in stderr, stderr
    commands = re.findall(r"`(vitcore resume [^`]+)`", stderr)
    assert commands == [f"vitcore resume {run_dir}"], stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_completed"] == 1
    assert (run_dir / "checkpoints" / "last.pt").is_file()

    # The line as printed, run from another folder, continues that run to its end.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    program, *arguments = shlex.split(commands[0])
    resumed = subprocess.run([sys.executable, "-m", program, *arguments], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["resumed"][0]["from_epoch"] == 1
