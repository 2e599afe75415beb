"""Saving matplotlib figures: the Agg backend (no display needed) and atomic PNG writes.

matplotlib is imported inside the functions: plugin registration imports the modules that use
these helpers and must stay cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitcore.atomic import atomic_path

__all__ = ["pyplot", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: pictures are files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path, dpi: int = 110) -> Path:
    """Write ``figure`` as a PNG atomically (a viewer or a kill never sees half a picture), then
    close it so long runs do not accumulate open figures. Returns ``path``."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(figure)
    return path
