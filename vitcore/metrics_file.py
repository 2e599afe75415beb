"""Reading and rewriting metrics.jsonl, the source of truth for every plot of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vitcore.atomic import write_text_atomic

__all__ = ["FILENAME", "parse_lines", "read_records", "truncate_after_step", "write_text_atomic"]

FILENAME = "metrics.jsonl"


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Records of a jsonl text; a torn last line (the process was killed mid-write) is skipped."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """All records of ``run_dir/metrics.jsonl`` in order; none when the run has not logged yet."""
    path = run_dir / FILENAME
    if not path.is_file():
        return []
    return parse_lines(path.read_text(encoding="utf-8"))




def truncate_after_step(path: Path, step: int) -> None:
    """Keep only records up to ``step`` (resume discards what was logged after the checkpoint)."""
    if not path.is_file():
        return
    kept = [r for r in parse_lines(path.read_text(encoding="utf-8")) if r.get("step", 0) <= step]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
