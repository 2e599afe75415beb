"""How the command line shows Python warnings: one line, ``warning: <message>``, no source echo.

Python's default prints ``/long/path/file.py:99: UserWarning: ...`` and then the source line that
warned, which tells a user of ``vitcore`` nothing they can act on. The message itself is kept (it is
what users need), on one line; a library's warning names the library it came from, so a user knows
whom it concerns. Filters (``-W``, ``PYTHONWARNINGS``, ``warnings.filterwarnings``) still decide
which warnings are shown: only their display changes.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

#: Top-level packages whose warnings are vitcore's own (the core and its plugin packages).
_OWN_PREFIXES = ("vitcore",)


def install() -> None:
    """Show every warning of this process through :func:`format_warning`."""
    warnings.showwarning = show_warning


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """A ``warnings.showwarning`` replacement (same signature)."""
    stream = file if file is not None else sys.stderr
    if stream is None:  # pythonw, or stderr closed: nowhere to show it
        return
    try:
        stream.write(format_warning(message, category, filename) + "\n")
    except OSError:  # a closed pipe must not turn a warning into a crash
        pass


def format_warning(message: Warning | str, category: type[Warning], filename: str) -> str:
    """``warning: <message>``, on one line, with ``[library]`` when a library (not vitcore) warned."""
    text = " ".join(str(message).split()) or category.__name__
    source = package_of(filename)
    return f"warning: {text}" if source is None or source.startswith(_OWN_PREFIXES) else f"warning: {text} [{source}]"


def package_of(filename: str) -> str | None:
    """The top-level package a source file belongs to, from its path; None when it cannot be told."""
    path = Path(filename)
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1:]
            return _name(rest[0]) if len(rest) > 1 else _name(path.stem)
    for module in list(sys.modules.values()):
        found = _package_of_module(module, path)
        if found is not None:
            return found
    return None


def _package_of_module(module: Any, path: Path) -> str | None:
    module_file = getattr(module, "__file__", None)
    if not module_file or Path(module_file) != path:
        return None
    return str(getattr(module, "__name__", "")).split(".")[0] or None


def _name(part: str) -> str:
    return part.split(".")[0]
