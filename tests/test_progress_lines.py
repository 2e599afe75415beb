"""stdout not a terminal (a log file, a scheduler): progress lines come every N seconds, also
between training records, so a slow epoch with a long log_every_steps is not silent."""

from __future__ import annotations

from vitcore.testing import run_cli, tiny_spec, write_spec


def test_progress_lines_come_between_records_without_a_terminal(tmp_path):
    # 12 training images in batches of 2: 6 steps per epoch, records at steps 3 and 6 only.
    spec = tiny_spec(tmp_path, epochs=1, batch_size=2, log_every_steps=3)
    spec["sinks"] = [{"type": "console"}]
    done = run_cli("run", str(write_spec(tmp_path / "spec.json", spec)), env={"VITCORE_PROGRESS_SECONDS": "0"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    progress = [line for line in lines if line.startswith("epoch 1/1 step ")]
    assert [line.split()[3] for line in progress] == [f"{n}/6" for n in range(1, 7)]
    # At a record the line has the window's figures; between records the step alone (no device read).
    assert all(" loss " in line and "img/s" in line for line in progress if line.split()[3] in ("3/6", "6/6"))
    assert all(line == f"epoch 1/1 step {line.split()[3]}" for line in progress if line.split()[3] not in ("3/6", "6/6"))
    assert lines.index(progress[-1]) < next(i for i, line in enumerate(lines) if line.startswith("epoch   1 |"))


def test_progress_lines_wait_the_interval(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1, batch_size=2, log_every_steps=3)
    spec["sinks"] = [{"type": "console"}]
    done = run_cli("run", str(write_spec(tmp_path / "spec.json", spec)), env={"VITCORE_PROGRESS_SECONDS": "3600"})
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("epoch 1/1 step ")] == ["epoch 1/1 step 1/6"]
