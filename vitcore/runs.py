"""Run directories: ``<output_dir>/<name>/v<N>/``, one model version each, never overwritten."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vitcore.atomic import write_text_atomic
from vitcore.errors import VitcoreError

VERSION_RE = re.compile(r"^v(\d+)$")
SUBDIRS = ("tb", "checkpoints", "plots", "viz", "exports")


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VitcoreError(f"{path}: not found") from None
    except json.JSONDecodeError as exc:
        raise VitcoreError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def versions(run_root: Path) -> list[int]:
    if not run_root.is_dir():
        return []
    found = (VERSION_RE.match(p.name) for p in run_root.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def create_version_dir(output_dir: Path, name: str) -> Path:
    """Claim the next free ``v<N>``; mkdir is atomic, so two runs never share a version."""
    run_root = output_dir / name
    try:
        run_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocking = next((p for p in [run_root, *run_root.parents] if p.exists() and not p.is_dir()), None)
        reason = f"{blocking} is a file, not a folder" if blocking else (exc.strerror or str(exc))
        raise VitcoreError(f"output_dir: cannot create the run folder {run_root}: {reason}; choose another "
                           "output_dir (e.g. --set output_dir=runs)") from None
    number = (versions(run_root) or [0])[-1] + 1
    while True:
        path = run_root / f"v{number}"
        try:
            path.mkdir()
        except FileExistsError:
            number += 1
            continue
        for sub in SUBDIRS:
            (path / sub).mkdir()
        return path


def resolve_run_dir(path: str | Path) -> Path:
    """Accept ``runs/<name>/v<N>`` or ``runs/<name>`` (its latest version)."""
    path = Path(path)
    if (path / "spec.json").is_file():
        return path
    numbers = versions(path)
    if numbers and (path / f"v{numbers[-1]}" / "spec.json").is_file():
        return path / f"v{numbers[-1]}"
    raise VitcoreError(
        f"{path}: not a run directory (expected runs/<name>/v<N> holding spec.json, or runs/<name>)"
    )


def git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(device: str, plugins: list[dict[str, Any]]) -> dict[str, Any]:
    import torch
    import torchvision

    from vitcore import __version__

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "vitcore": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": device,
        "cuda": torch.version.cuda,
        "plugins": plugins,
        "git_commit": git_commit(Path.cwd()),
        "argv": sys.argv,
        "created": now_iso(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_status(run_dir: Path, summary: dict[str, Any]) -> str:
    """The status a person should see: summary.json's, except that a run still marked
    ``running`` whose process is gone (nobody holds its lock) is ``interrupted``."""
    from vitcore.run_lock import is_held

    status = summary.get("status", "unknown")
    if status == "running" and not is_held(run_dir):
        return "interrupted"
    return str(status)


def _tags_or_note(run_dir: Path) -> list[str]:
    """A version's tags; an unreadable tags.json is shown as such for that version alone."""
    from vitcore.versions import read_tags

    try:
        return read_tags(run_dir)
    except (VitcoreError, KeyError, TypeError, ValueError):
        return ["(tags.json unreadable)"]


#: How many folder levels ``runs list`` descends below ROOT to find run folders: a sweep keeps
#: its trials one level down (``runs/<sweep>/trial-<N>/v1``); a bound keeps a mistaken ROOT (a
#: home folder) quick.
GROUP_DEPTH = 3


def _natural(path: Path) -> list[Any]:
    """``trial-2`` before ``trial-10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _holds_a_run(run_root: Path) -> bool:
    return any((run_root / f"v{n}" / name).is_file() for n in versions(run_root) for name in ("spec.json", "summary.json"))


def run_roots(root: Path, depth: int = 0) -> list[tuple[str, Path]]:
    """``(name, folder)`` of every run folder (one holding ``v<N>`` versions) under ``root``: its
    children, and below a child that is no run folder (a sweep's, a group of runs) those found
    there, named by their path from ``root`` (``lr-depth/trial-3``). Below the first level only
    folders whose versions hold a spec.json or summary.json count, so a stray ``v1`` folder in
    some cache is not taken for a run."""
    found: list[tuple[str, Path]] = []
    if not root.is_dir():
        return found
    for child in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_natural):
        if versions(child) and (depth == 0 or _holds_a_run(child)):
            found.append((child.name, child))
        elif depth < GROUP_DEPTH and not VERSION_RE.match(child.name):
            found += [(f"{child.name}/{name}", path) for name, path in run_roots(child, depth + 1)]
    return found


def run_summaries(root: Path) -> list[dict[str, Any]]:
    """One row per version under ``root`` (for ``vitcore runs list``), sweeps' trials included."""
    rows = []
    for name, run_root in run_roots(root):
        for number in versions(run_root):
            path = run_root / f"v{number}"
            try:
                summary = read_json(path / "summary.json")
            except VitcoreError:
                summary = {}
            rows.append(
                {
                    "name": name,
                    "version": number,
                    "path": str(path),
                    "status": run_status(path, summary),
                    "best_metric": summary.get("best_metric"),
                    "best_value": summary.get("best_value"),
                    "epochs": summary.get("epochs_completed"),
                    "started": summary.get("started"),
                    "tags": _tags_or_note(path),
                }
            )
    return rows
