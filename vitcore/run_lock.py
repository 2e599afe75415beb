"""One process at a time in a run folder: an exclusive lock with the holder's name on it.

A run or resume holds ``RUN_DIR/.run.lock`` (filelock: ``flock`` on POSIX, so the operating
system releases it when the holder dies, even by SIGKILL) and writes who holds it to
``RUN_DIR/.run.lock.json`` (pid, host, since). A second process is refused with that holder's
name. A lock whose holder is gone is free again: the next resume takes it over and says whose it
was; ``runs list`` shows such a run, still marked ``running`` in summary.json, as ``interrupted``.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from vitcore.errors import VitcoreError

LOCK_NAME = ".run.lock"
HOLDER_NAME = ".run.lock.json"


class RunFolderBusy(VitcoreError):
    """Another process works in this run folder."""


def _holder(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / HOLDER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return f"process {holder.get('pid')} on {holder.get('host')} (since {holder.get('since')})"


class RunLock:
    """The exclusive lock on one run folder; ``acquire`` refuses at once when it is held."""

    def __init__(self, run_dir: Path) -> None:
        from filelock import FileLock

        self.run_dir = Path(run_dir)
        self._lock = FileLock(self.run_dir / LOCK_NAME, timeout=0)
        #: The earlier holder whose process is gone, when this lock was taken over.
        self.took_over: dict[str, Any] | None = None

    def acquire(self, action: str = "train in") -> "RunLock":
        from filelock import Timeout

        from vitcore.runs import now_iso

        previous = _holder(self.run_dir)
        try:
            self._lock.acquire()
        except Timeout:
            raise RunFolderBusy(
                f"{self.run_dir}: {describe_holder(previous)} is using this run folder; cannot {action} it "
                "at the same time. Wait for it to end (or stop it), or start a new run."
            ) from None
        if previous and (previous.get("pid"), previous.get("host")) != (os.getpid(), socket.gethostname()):
            self.took_over = previous  # its process is gone: the OS released its lock
        from vitcore.atomic import write_text_atomic

        write_text_atomic(self.run_dir / HOLDER_NAME, json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}))
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            (self.run_dir / HOLDER_NAME).unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_held(run_dir: Path) -> bool:
    """Whether a live process holds ``run_dir``'s lock (never takes it for longer than a check)."""
    from filelock import FileLock, Timeout

    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return False
    probe = FileLock(path, timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return True
    except OSError:  # a read-only folder: nobody can be training in it
        return False
    probe.release()
    return False


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files a killed writer left (call only while holding the lock)."""
    removed = []
    for path in Path(run_dir).rglob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
