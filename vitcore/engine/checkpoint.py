"""Checkpoints written atomically and read without unpickling arbitrary objects."""

from __future__ import annotations

import errno
import os
import random
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from vitcore.atomic import atomic_path
from vitcore.errors import VitcoreError


def atomic_save(obj: Any, path: Path) -> None:
    """Save to a temporary file in the same folder, fsync, then rename: a kill never leaves half a file."""
    with atomic_path(path, fsync=True) as tmp:
        failure = None
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a failed write as a RuntimeError
            failure = str(exc)
        # Outside the except block, keeping only the message: the error (and the one it arose
        # from) hold the frames that hold the writer's file open, its disk space taken even once
        # the file is unlinked, until they are gone.
        if failure is not None:
            if shutil.disk_usage(tmp.parent).free < 1 << 20:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            raise RuntimeError(f"saving {path.name} failed: {failure}")


def load_torch_file(path: Path, what: str = "checkpoint") -> Any:
    """Read a .pt file with ``weights_only=True``: tensors and plain containers, never code.

    The one place vitcore unpickles: a file that holds objects (code) is refused, and a truncated
    or foreign file is called what it is, instead of torch's internal error or its advice to retry
    with ``weights_only=False``, which vitcore never follows.
    """
    import pickle

    if not path.is_file():
        raise VitcoreError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "allowlist" in str(exc):  # an object or function to call
            raise VitcoreError(
                f"{path}: refused: this {what} holds Python objects or code, not only tensors, and loading it "
                "could run that code. Re-save the weights as a state dict of tensors (torch.save(model.state_dict()))"
                " or as .safetensors."
            ) from None
        raise VitcoreError(f"{path}: not a PyTorch {what} (unreadable pickle); it may be truncated or corrupt") from None
    except Exception as exc:  # noqa: BLE001 - zip reader errors, EINVAL on empty files, ...
        size = path.stat().st_size
        raise VitcoreError(
            f"{path}: not a PyTorch {what} file, or a truncated or corrupt one ({size} bytes; "
            f"{type(exc).__name__}). Use another copy, or `vitcore resume` from the run's other checkpoint."
        ) from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    return load_torch_file(path, "checkpoint")


def rng_state() -> dict[str, Any]:
    """Every RNG the run uses, in types ``weights_only`` loading accepts (no numpy arrays)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Whatever the block draws, the run's random streams continue afterwards as if it had not
    run: components at an epoch end (pictures picking samples) never change the training draws,
    so a resumed run, which skips them, draws what the uninterrupted one did."""
    state = rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_as_tuples(v) for v in value)
    return value
