"""The SHA-256 of every exported file, whichever exporter wrote it: ``exports/manifest.json``.

An exporter returns the files it wrote; ``vitcore.exporting.run_exporters`` hashes each of them
here, grouped by exporter, so ``vitcore runs verify`` checks model.pt, ONNX files and any
plugin's export without the exporter recording anything itself. A later export with one exporter
replaces that exporter's group only (an ONNX export that no longer writes model.int8.onnx drops
its entry), and the others stay. The model card is left out: it is rewritten after every export.
Cheap to import: no torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vitcore.hashing import sha256
from vitcore.runs import now_iso, read_json, write_json_atomic

MANIFEST = "manifest.json"
MODEL_CARD = "MODEL_CARD.md"
#: The key of an exporter's own record (``exports/*.json``) holding sentences for the model card.
CARD_NOTES = "card_notes"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def readable_like_the_rest(files: Iterable[Path], out_dir: Path) -> None:
    """Give exported files (and the folders holding them under ``out_dir``) the permissions a
    plain ``open``/``mkdir`` gives: libraries that save through their own temporary files
    (safetensors' 0600 files, ``tempfile.mkdtemp``'s 0700 folders) would keep a model from the
    group or a web server that serves the folder."""
    mask = _umask()
    out_dir = Path(out_dir).absolute()
    for file in files:
        path = Path(file).absolute()
        if path.is_file() and (path.stat().st_mode & 0o777) != 0o666 & ~mask:
            os.chmod(path, 0o666 & ~mask)
        folder = path.parent
        while folder != out_dir and out_dir in folder.parents:
            if (folder.stat().st_mode & 0o777) != 0o777 & ~mask:
                os.chmod(folder, 0o777 & ~mask)
            folder = folder.parent


def file_entry(path: Path, out_dir: Path) -> dict[str, Any]:
    """``{"file": path relative to exports/, "bytes", "sha256"}``: the shape ``runs verify`` reads."""
    return {"file": Path(os.path.relpath(path, out_dir)).as_posix(), "bytes": path.stat().st_size,
            "sha256": sha256(path)}


def record_exports(out_dir: Path, exporter: str, options: Mapping[str, Any], files: Sequence[Path]) -> Path:
    """Hash ``files`` (what ``exporter`` returned) into ``out_dir/manifest.json``, replacing that
    exporter's earlier group; returns the manifest's path."""
    path = out_dir / MANIFEST
    manifest: dict[str, Any] = read_json(path) if path.is_file() else {}
    groups = dict(manifest.get("exporters") or {})
    hashed = [Path(f) for f in files if Path(f).is_file() and Path(f).name != MODEL_CARD
              and Path(f).absolute() != path.absolute()]
    groups[exporter] = {"exported": now_iso(), "options": dict(options),
                        "files": [file_entry(f, out_dir) for f in hashed]}
    write_json_atomic(path, {"format": 1, "updated": now_iso(), "exporters": groups})
    return path


def card_notes(out_dir: Path) -> list[str]:
    """Every exporter record's ``card_notes`` (sentences about its checks), for the model card."""
    notes: list[str] = []
    for record in sorted(Path(out_dir).glob("*.json")):
        try:
            data = read_json(record)
        except Exception:  # noqa: BLE001 - a broken record is runs verify's business, not the card's
            continue
        found = data.get(CARD_NOTES) if isinstance(data, dict) else None
        if isinstance(found, list):
            notes += [str(note) for note in found if str(note) not in notes]
    return notes
