"""What long commands say while they work: a line when a step starts, one with the time it took.

``vitcore visualize``, ``export``, ``report`` and the decoded-cache build take from seconds to
hours; a command that prints nothing meanwhile looks hung. Every line goes to stderr, so stdout
keeps only the results (file paths, JSON) and ``vitcore export RUN --format onnx > files.txt``
still works. Counted work (images decoded) gets tqdm's bar on a terminal and, in a log file or
under a scheduler where tqdm stays silent, a plain line every ``VITCORE_PROGRESS_SECONDS``
(default 30), as training does.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, TextIO

__all__ = ["StepNote", "format_seconds", "progress_bar", "timed_step"]


def format_seconds(seconds: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``: short, and exact enough to compare steps."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class StepNote:
    """What a step adds to its closing line (``note.detail = "3 files"``)."""

    detail: str = ""


def _stream(stream: TextIO | None) -> TextIO:
    return stream if stream is not None else sys.stderr


@contextmanager
def timed_step(what: str, stream: TextIO | None = None) -> Iterator[StepNote]:
    """Print ``what ...`` now and ``what: done in 1.23 s`` (or ``failed after``) when the block ends.

    ``what`` names the work in the user's words (``export onnx``, ``draw attention_maps``); the
    block may set ``note.detail`` (``"4 files"``) for the closing line.
    """
    out = _stream(stream)
    print(f"{what} ...", file=out, flush=True)
    note = StepNote()
    start = time.perf_counter()
    try:
        yield note
    except BaseException:
        print(f"{what}: failed after {format_seconds(time.perf_counter() - start)}", file=out, flush=True)
        raise
    detail = f" ({note.detail})" if note.detail else ""
    print(f"{what}: done in {format_seconds(time.perf_counter() - start)}{detail}", file=out, flush=True)


class PlainProgress:
    """Progress of counted work as plain lines: the first at once, then one every ``every`` seconds."""

    def __init__(self, total: int, what: str, unit: str, every: float, stream: TextIO) -> None:
        self.total, self.what, self.unit, self.every, self.stream = total, what, unit, every, stream
        self.done = 0
        self.start = time.perf_counter()
        self.last: float | None = None
        self.shown = -1  # the count the last line showed
        self._line()

    def _line(self) -> None:
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        elapsed = format_seconds(time.perf_counter() - self.start)
        print(f"{self.what}: {self.done}/{self.total} {self.unit}{share}, {elapsed}", file=self.stream, flush=True)
        self.last, self.shown = time.perf_counter(), self.done

    def update(self, count: int = 1) -> None:
        self.done += count
        if self.last is None or time.perf_counter() - self.last >= self.every:
            self._line()

    def close(self) -> None:
        """The final count, unless the last line showed it already."""
        if self.shown != self.done:
            self._line()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Silent:
    def update(self, count: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_bar(total: int, what: str, unit: str = "it", enabled: bool = True, stream: TextIO | None = None) -> Any:
    """A context manager with ``update(n)``: tqdm's bar when ``stream`` (default stderr) is a
    terminal, else plain lines every ``VITCORE_PROGRESS_SECONDS``; nothing when not ``enabled``
    (the other ranks of a torchrun run)."""
    out = _stream(stream)
    if not enabled:
        return _Silent()
    if hasattr(out, "isatty") and out.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=what, unit=unit, dynamic_ncols=True, file=out)
    every = float(os.environ.get("VITCORE_PROGRESS_SECONDS", "30"))
    return PlainProgress(total, what, unit, every, out)
