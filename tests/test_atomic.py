"""Atomic writes leave shareable files (not mkstemp's owner-only 0600) and no temporary files; the
lock serialises writers and cache builders."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from vitcore.atomic import atomic_path, locked, write_text_atomic


def test_written_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "model.bin"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


GENERATE_ONCE = """
import sys
from pathlib import Path
import vitcore.builtin.shapes as shapes

real = shapes.generate
def counted(folder, options):
    with open(sys.argv[2], "a") as log:
        log.write("generated\\n")
    real(folder, options)

shapes.generate = counted
options = shapes.ShapesDataset.Options(classes=["circle", "square"], train_per_class=40, val_per_class=10,
                                       image_size=32)
shapes.ensure_generated(Path(sys.argv[1]), options)
print("ok")
"""


def test_processes_generating_one_cache_take_turns_and_the_work_is_done_once(tmp_path):
    """The lock (filelock) around a cache build: the second process waits, then uses the first's."""
    root, log = tmp_path / "datasets" / "shapes", tmp_path / "generated.log"
    children = [subprocess.Popen([sys.executable, "-c", GENERATE_ONCE, str(root), str(log)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], [err for _, err in outputs]
    assert log.read_text() == "generated\n"
    assert len(list((root / "train" / "circle").glob("*.png"))) == 40


def test_locked_serialises_read_modify_write_across_threads(tmp_path):
    import threading

    counter = tmp_path / "counter"
    counter.write_text("0")

    def bump() -> None:
        for _ in range(20):
            with locked(counter):
                value = int(counter.read_text())
                write_text_atomic(counter, str(value + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.read_text() == "80"
