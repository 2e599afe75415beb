"""Following metrics.jsonl: each poll reads only the bytes written since the last one.

Per file the follower keeps an index of where each complete record starts and ends, and its
step. A poll first indexes the bytes appended since the previous poll (only those are read and
parsed), then finds the first record after the asked step by bisection and reads those records'
bytes. The answer is built from the records' own JSON text, not parsed and encoded again (a
record holding NaN or Infinity, which browsers do not parse, is the exception). A file that
shrank or was replaced (a resumed run rewrites it without the records after its checkpoint)
gets a new ``generation`` and the index starts again. A torn last line (the writer is mid-line)
waits for the next poll; a corrupt line is skipped.
"""

from __future__ import annotations

import json
import math
import os
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Records returned by one poll at most; the answer says ``more`` when there are others.
DEFAULT_LIMIT = 50_000
_NOT_JSON = (b"NaN", b"Infinity")


@dataclass
class _FileIndex:
    identity: tuple[int, int]
    indexed_bytes: int = 0
    starts: array = field(default_factory=lambda: array("q"))
    ends: array = field(default_factory=lambda: array("q"))
    steps: array = field(default_factory=lambda: array("q"))
    monotonic: bool = True
    last_step: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def generation(self) -> str:
        return f"{self.identity[0]:x}-{self.identity[1]:x}"


@dataclass
class Answer:
    """One poll: the records as a JSON array (bytes) and what the API reports beside them."""

    records_json: bytes
    last_step: int | None
    count: int
    generation: str | None
    more: bool
    bytes_read: int

    def meta(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "count": self.count, "generation": self.generation,
                "more": self.more, "bytes_read": self.bytes_read}

    def to_dict(self) -> dict[str, Any]:
        return {"records": json.loads(self.records_json), **self.meta()}


def _step_of(record: dict[str, Any], previous: int) -> int:
    step = record.get("step")
    if isinstance(step, (int, float)) and not isinstance(step, bool) and math.isfinite(step):
        return int(step)
    return previous


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _browser_json(line: bytes) -> bytes:
    """The record's own text, or, when it holds NaN/Infinity, the record with those as null."""
    if any(word in line for word in _NOT_JSON):
        return json.dumps(_finite(json.loads(line)), allow_nan=False).encode()
    return line


class MetricsFollower:
    """Incremental reads of many metrics.jsonl files (one index per file, thread-safe)."""

    def __init__(self) -> None:
        self._files: dict[str, _FileIndex] = {}
        self._lock = threading.Lock()

    def _index(self, path: Path) -> tuple[_FileIndex, int] | None:
        key = os.fspath(path)
        try:
            stat = os.stat(key)
        except OSError:
            with self._lock:
                self._files.pop(key, None)
            return None
        identity = (stat.st_dev, stat.st_ino)
        with self._lock:
            index = self._files.get(key)
            if index is None or index.identity != identity or stat.st_size < index.indexed_bytes:
                index = self._files[key] = _FileIndex(identity)
        read = 0
        with index.lock:
            if stat.st_size > index.indexed_bytes:
                with open(key, "rb") as handle:
                    handle.seek(index.indexed_bytes)
                    data = handle.read(stat.st_size - index.indexed_bytes)
                read = len(data)
                complete = data.rfind(b"\n") + 1  # only complete lines; a torn one waits
                position = index.indexed_bytes
                for line in data[:complete].split(b"\n")[:-1]:
                    start, position = position, position + len(line) + 1
                    try:
                        record = json.loads(line)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        continue  # blank or corrupt: skipped
                    if not isinstance(record, dict):
                        continue
                    step = _step_of(record, index.last_step)
                    if step < index.last_step:
                        index.monotonic = False
                    index.starts.append(start)
                    index.ends.append(start + len(line))
                    index.steps.append(step)
                    index.last_step = max(index.last_step, step)
                index.indexed_bytes += complete
        return index, read

    def answer(self, path: Path, after: int | None = None, limit: int = DEFAULT_LIMIT) -> Answer:
        """Records whose step is greater than ``after`` (all when None), oldest first, at most
        ``limit``; ``bytes_read`` is what this poll read from the disk."""
        indexed = self._index(path)
        if indexed is None:
            return Answer(b"[]", None, 0, None, False, 0)
        index, read = indexed
        with index.lock:
            count = len(index.starts)
            if after is None:
                chosen: range | list[int] = range(0, count)
            elif index.monotonic:
                chosen = range(bisect_right(index.steps, after), count)
            else:
                chosen = [i for i, step in enumerate(index.steps) if step > after]
            chosen = chosen[:limit]
            more = len(chosen) == limit and len(chosen) > 0 and chosen[-1] + 1 < count
            spans = [(index.starts[i], index.ends[i]) for i in chosen]
            last_step = index.last_step if count else None
            generation = index.generation
        parts: list[bytes] = []
        if spans:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_ino != index.identity[1]:  # replaced since: next poll
                    return Answer(b"[]", last_step, count, None, False, read)
                if isinstance(chosen, range):  # one contiguous block
                    base = spans[0][0]
                    handle.seek(base)
                    data = handle.read(spans[-1][1] + 1 - base)  # through the last newline
                    read += len(data)
                    parts = [_browser_json(data[s - base:e - base]) for s, e in spans]
                else:
                    for start, end in spans:
                        handle.seek(start)
                        line = handle.read(end - start)
                        read += len(line)
                        parts.append(_browser_json(line))
        return Answer(b"[" + b",".join(parts) + b"]", last_step, count, generation, more, read)

    def read(self, path: Path, after: int | None = None, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """``answer`` with the records parsed (for Python callers and tests)."""
        return self.answer(path, after, limit).to_dict()
