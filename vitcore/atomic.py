"""Atomic file writes (a crash or kill leaves the old file or the new one, never half of one) and
a cross-process lock for read-modify-write updates."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp", fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed onto ``path``.

    The temporary file gets the permissions a plain ``open`` would give (mkstemp's are 0600, which
    would make plots, exports and reports readable by their owner only), before the block and
    again after it: a library that saves through its own temporary file renamed onto ``tmp``
    (safetensors' ``save_file`` does, with 0600) would otherwise leave its permissions behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    mode = 0o666 & ~_umask()
    try:
        os.chmod(tmp, mode)
        yield tmp
        if tmp.is_file() and (os.stat(tmp).st_mode & 0o777) != mode:
            os.chmod(tmp, mode)
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_atomically(path: Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` (a library's own save function), then rename onto ``path``: never a
    half-written file. Returns ``path``."""
    with atomic_path(path) as tmp:
        write(str(tmp))
    return path


@contextmanager
def locked(path: Path, timeout: float = -1) -> Iterator[None]:
    """Hold an exclusive lock on a hidden ``.NAME.lock`` beside ``path`` for the block.

    Atomic writes alone keep a file whole, but two writers that both read the old contents lose
    one update (tags.json), and two processes building one cache do the work twice; the lock
    serialises them, across processes. filelock does the locking: ``flock`` on POSIX, ``msvcrt``
    on Windows, a marker file where the filesystem has neither. ``timeout`` seconds (-1: wait as
    long as it takes) raises ``filelock.Timeout``.
    """
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(f".{path.name}.lock"), timeout=timeout):
        yield
