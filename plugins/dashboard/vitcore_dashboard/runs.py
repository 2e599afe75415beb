"""Reading run folders for the dashboard: find every version under ROOT, describe it, never write.

A version is ``ROOT/<name>/v<N>/``; a sweep's trials are ``ROOT/<sweep>/<trial>/v<N>/`` and are
grouped by their sweep. Every file is read tolerantly: a half-written, corrupt or older run folder
gets a row that says what is wrong with it (``problems``) instead of breaking the page. Parsed
JSON files are cached by (mtime, size), so a poll of 1,000 versions re-reads only what changed.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

VERSION_RE = re.compile(r"^v(\d+)$")
TRIAL_RE = re.compile(r"(\d+)$")
#: What the engine writes; anything else is shown as it is.
STATUSES = ("running", "completed", "failed", "interrupted", "diverged", "pruned", "early_stopped")
PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}
#: evaluations/ holds each evaluation's reliability diagram, confusion matrix and mistakes gallery.
PICTURE_FOLDERS = ("plots", "viz", "evaluations")


class RunNotFound(LookupError):
    """A run name or version that is not under ROOT (or tries to leave it)."""


@dataclass(frozen=True)
class RunRef:
    """One version: its name relative to ROOT (``flowers`` or ``sweep/trial-3``) and ``v<N>``."""

    name: str
    version: str
    path: Path

    @property
    def number(self) -> int:
        return int(self.version[1:])

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"


def run_status(run_dir: Path, summary: dict[str, Any] | None) -> str:
    """The one place the dashboard decides a version's status: the core's rule (a run marked
    ``running`` whose process is gone, nobody holding its folder lock, is ``interrupted``)."""
    from vitcore.api import run_status as core_run_status

    if summary is None or not isinstance(summary.get("status"), str) or not summary["status"]:
        return "unknown"
    return core_run_status(run_dir, summary)


class JsonCache:
    """Parsed JSON files keyed by path and revalidated by (mtime_ns, size)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, int, Any, str | None]] = {}
        self._lock = threading.Lock()

    def read(self, path: Path) -> tuple[Any, str | None]:
        """``(value, None)``, or ``(None, problem)`` when the file is missing, unreadable or not JSON."""
        key = os.fspath(path)
        try:
            stat = os.stat(key)
        except FileNotFoundError:
            return None, f"{path.name} is missing"
        except OSError as exc:
            return None, f"{path.name} cannot be read ({exc.strerror})"
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
            return cached[2], cached[3]
        value: Any = None
        problem: str | None = None
        try:
            with open(key, "rb") as handle:
                text = handle.read()
            value = json.loads(text) if text.strip() else None
            if value is None:
                problem = f"{path.name} is empty (still being written?)"
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"{path.name} cannot be read ({exc})"
        except json.JSONDecodeError as exc:
            problem = f"{path.name} is not valid JSON ({exc.msg}, line {exc.lineno})"
        with self._lock:
            self._entries[key] = (stat.st_mtime_ns, stat.st_size, value, problem)
        return value, problem


def _version_dirs(folder: str) -> list[tuple[int, str]]:
    try:
        with os.scandir(folder) as entries:
            found = [(int(m.group(1)), e.name) for e in entries
                     if (m := VERSION_RE.match(e.name)) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(found)


def _subdirs(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries
                          if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except OSError:
        return []


def _recorded_sweep(summary: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A sweep trial's record: summary.json's ``meta.sweep`` (what vitcore-sweep writes, through the
    spec's ``meta``), else a ``sweep`` entry of summary.json, else the spec's ``meta.sweep``."""
    for holder in (summary.get("meta"), summary, spec.get("meta")):
        if isinstance(holder, dict) and holder.get("sweep"):
            return holder["sweep"]
    return None


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def test_view(summary: dict[str, Any]) -> dict[str, Any] | None:
    """summary.json's ``test`` (the test split evaluated with the best model at the end of the run)
    as the run page shows it: the key figures, each class's precision/recall/F1 and the confusion
    matrix; None when the run has none (no test split, still running, an older vitcore)."""
    test = summary.get("test")
    if not isinstance(test, dict):
        return None

    def scores(value: Any) -> dict[str, Any]:
        value = value if isinstance(value, dict) else {}
        return {key: _number(value.get(key)) for key in ("precision", "recall", "f1", "support") if key in value}

    calibration = test.get("calibration") if isinstance(test.get("calibration"), dict) else {}
    per_class = test.get("per_class") if isinstance(test.get("per_class"), dict) else {}
    confusion = test.get("confusion")
    return {
        "images": _number(test.get("images")),
        "acc1": _number(test.get("acc1")),
        "acc5": _number(test.get("acc5")),
        "loss": _number(test.get("loss")),
        "ece": _number(calibration.get("ece")),
        "macro": scores(test.get("macro")),
        "weighted": scores(test.get("weighted")),
        "per_class": {str(name): scores(row) for name, row in per_class.items()},
        "classes": [str(c) for c in test.get("classes") or []] if isinstance(test.get("classes"), list) else None,
        "confusion": confusion if isinstance(confusion, list) else None,
        "mistakes": _number(test.get("mistakes")),
        "file": _text(test.get("file")),
    }


class RunStore:
    """Every version under ``root``, described from its files (read-only)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.cache = JsonCache()

    # -- finding versions ------------------------------------------------------------------

    def find(self) -> list[RunRef]:
        """``ROOT/<name>/v<N>`` and, one level deeper, ``ROOT/<group>/<name>/v<N>`` (sweep trials)."""
        refs: list[RunRef] = []
        root = os.fspath(self.root)
        for top in _subdirs(root):
            top_path = os.path.join(root, top)
            found = _version_dirs(top_path)
            if found:
                refs.extend(RunRef(top, v, Path(top_path, v)) for _, v in found)
                continue
            for sub in _subdirs(top_path):
                sub_path = os.path.join(top_path, sub)
                refs.extend(RunRef(f"{top}/{sub}", v, Path(sub_path, v)) for _, v in _version_dirs(sub_path))
        return refs

    def ref(self, name: str, version: str) -> RunRef:
        """The version ``name``/``version``; RunNotFound for anything not a version under ROOT."""
        parts = PurePosixPath(name).parts
        if (not VERSION_RE.match(version) or not parts or len(parts) > 2
                or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts)):
            raise RunNotFound(f"no run {name}/{version} under {self.root}")
        path = self.root.joinpath(*parts, version)
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise RunNotFound(f"no run {name}/{version} under {self.root}") from None
        if not resolved.is_dir() or not resolved.is_relative_to(self.root):
            raise RunNotFound(f"no run {name}/{version} under {self.root}")
        return RunRef("/".join(parts), version, path)

    def ref_from_key(self, key: str) -> RunRef:
        """``name/vN`` (as the compare page sends it) -> RunRef."""
        name, _, version = key.strip().strip("/").rpartition("/")
        return self.ref(name, version)

    # -- describing them -------------------------------------------------------------------

    def row(self, ref: RunRef) -> dict[str, Any]:
        """What the runs list shows for one version; ``problems`` says what could not be read."""
        problems: list[str] = []
        summary, problem = self.cache.read(ref.path / "summary.json")
        if problem:
            problems.append(problem)
        if not isinstance(summary, dict):
            if summary is not None:
                problems.append("summary.json is not a JSON object")
            summary = None
        spec, problem = self.cache.read(ref.path / "spec.json")
        if problem:
            problems.append(problem)
        if not isinstance(spec, dict):
            spec = {}
        train = spec.get("train") if isinstance(spec.get("train"), dict) else {}
        tags: list[str] = []
        if (ref.path / "tags.json").exists():
            data, problem = self.cache.read(ref.path / "tags.json")
            if problem:
                problems.append(problem)
            elif isinstance(data, dict) and isinstance(data.get("tags"), list):
                tags = [str(t) for t in data["tags"]]
            else:
                problems.append("tags.json has no list of tags")
        s = summary or {}
        group, trial = self._sweep(ref, _recorded_sweep(s, spec))
        if summary is not None and "status" not in s:
            problems.append("summary.json has no status (written by an older vitcore?)")
        return {
            "name": ref.name,
            "version": ref.version,
            "number": ref.number,
            "key": ref.key,
            "path": ref.path.relative_to(self.root).as_posix(),
            "status": run_status(ref.path, summary),
            "best_metric": _text(s.get("best_metric")),
            "best_value": _number(s.get("best_value")),
            "best_epoch": _number(s.get("best_epoch")),
            "epochs_completed": _number(s.get("epochs_completed")),
            "epochs_total": _number(train.get("epochs")),
            "steps": _number(s.get("steps")),
            "images_per_sec": _number(s.get("images_per_sec")),
            "device": _text(s.get("device")),
            "parameters": _number(s.get("parameters")),
            "started": _text(s.get("started")),
            "finished": _text(s.get("finished")),
            "wall_time_s": _number(s.get("wall_time_s")),
            "error": _text(s.get("error")),
            "tags": tags,
            "sweep": group,
            "trial": trial,
            "problems": problems,
        }

    @staticmethod
    def _sweep(ref: RunRef, recorded: Any) -> tuple[str | None, int | str | None]:
        """The sweep a version belongs to: summary.json's ``sweep`` entry, else its folder."""
        top, _, sub = ref.name.partition("/")
        trial: int | str | None = None
        group: str | None = top if sub else None
        if sub and (m := TRIAL_RE.search(sub)):
            trial = int(m.group(1))
        if isinstance(recorded, str) and recorded:
            group = recorded
        elif isinstance(recorded, dict):
            name = recorded.get("name") or recorded.get("sweep")
            group = str(name) if name else group or ref.name
            for field in ("trial", "number", "trial_number"):
                if isinstance(recorded.get(field), (int, str)) and not isinstance(recorded.get(field), bool):
                    trial = recorded[field]
                    break
        return group, trial

    def rows(self, name: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        """Every version's row, optionally only names containing ``name`` and versions tagged ``tag``."""
        rows = []
        needle = (name or "").lower()
        for ref in self.find():
            if needle and needle not in ref.name.lower():
                continue
            row = self.row(ref)
            if tag and tag not in row["tags"]:
                continue
            rows.append(row)
        return rows

    def detail(self, ref: RunRef) -> dict[str, Any]:
        """The row plus summary, spec, env and the pictures, for the run page."""
        row = self.row(ref)
        documents: dict[str, Any] = {}
        for name in ("summary", "spec", "env"):
            value, problem = self.cache.read(ref.path / f"{name}.json")
            documents[name] = value if problem is None else {"problem": problem}
        summary = documents["summary"] if isinstance(documents["summary"], dict) else {}
        classes = summary.get("classes") if isinstance(summary.get("classes"), list) else None
        return {
            **row,
            "classes": classes,
            **documents,
            "pictures": self.pictures(ref),
            "test": test_view(summary),
            "test_error": _text(summary.get("test_error")),
            "has_model_summary": (ref.path / "model_summary.json").is_file(),
            "has_checkpoint": any((ref.path / "checkpoints" / f).is_file() for f in ("best.pt", "last.pt")),
            "has_metrics": (ref.path / "metrics.jsonl").is_file(),
        }

    def pictures(self, ref: RunRef) -> list[dict[str, Any]]:
        """plots/, viz/ and evaluations/ pictures with the URL to fetch them and their mtime (to refresh them)."""
        found = []
        for folder in PICTURE_FOLDERS:
            try:
                with os.scandir(ref.path / folder) as entries:
                    for entry in entries:
                        if entry.is_file() and Path(entry.name).suffix.lower() in PICTURE_SUFFIXES \
                                and not entry.name.startswith("."):
                            stat = entry.stat()
                            relative = (ref.path / folder / entry.name).relative_to(self.root).as_posix()
                            found.append({"folder": folder, "name": entry.name, "url": f"/files/{relative}",
                                          "mtime": stat.st_mtime_ns // 1_000_000, "bytes": stat.st_size})
            except OSError:
                continue
        return sorted(found, key=lambda p: (p["folder"], p["name"]))

    def picture_path(self, relative: str) -> Path:
        """The file ``ROOT/relative`` when it is a picture inside ROOT; RunNotFound otherwise."""
        if "\0" in relative or "\\" in relative:
            raise RunNotFound(relative)
        path = self.root.joinpath(*PurePosixPath(relative).parts)
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise RunNotFound(relative) from None
        if (not resolved.is_relative_to(self.root) or not resolved.is_file()
                or resolved.suffix.lower() not in PICTURE_SUFFIXES):
            raise RunNotFound(relative)
        return resolved
