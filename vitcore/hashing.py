"""SHA-256 of files: the fingerprints run records, exports and lineage keep of weights."""

from __future__ import annotations

import hashlib
import os

__all__ = ["sha256"]


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (weights can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
