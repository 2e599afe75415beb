"""Where a pretrained model's files are: a local folder, or a hub id already in the HF cache.

vitcore never downloads, so a hub id is looked up in the local cache only, and a miss says
where it looked and how to put a copy there.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from vitcore.errors import VitcoreError


def hub_cache_dir() -> Path:
    """The HF hub cache as huggingface_hub resolves it, read from the environment now (not at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(os.environ.get("HF_HOME") or Path(xdg) / "huggingface").expanduser() / "hub"


#: ``name`` or ``org/name``; anything else (``./x``, ``/abs``, ``a/b/c``) can only be a folder.
_HUB_ID = re.compile(r"^\w[\w.-]*(/\w[\w.-]*)?$")


def resolve_pretrained(name: str, base_dir: Path) -> Path:
    """The folder holding ``config.json`` for ``name``: a path (relative to ``base_dir``) or a hub id."""
    path = Path(name).expanduser()
    folder = path if path.is_absolute() else base_dir / path
    if folder.is_dir():
        return _check_folder(folder, name)
    if not _HUB_ID.match(name):
        raise VitcoreError(f"model.pretrained: folder {folder} not found (give a save_pretrained folder or a hub id)")
    return _check_folder(_from_hub_cache(name, folder), name)


def _from_hub_cache(repo_id: str, folder: Path) -> Path:
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir()
    try:
        return Path(snapshot_download(repo_id, cache_dir=cache, local_files_only=True))
    except (OSError, ValueError) as exc:  # LocalEntryNotFoundError, HFValidationError
        raise VitcoreError(
            f"model.pretrained: {repo_id!r} is not a folder ({folder} does not exist) and the Hugging Face "
            f"cache {cache} (HF_HUB_CACHE, else HF_HOME/hub) holds no copy of it ({type(exc).__name__}). "
            f"vitcore never downloads: on a machine with internet run `hf download {repo_id}` and copy its "
            "cache here (or set HF_HOME / HF_HUB_CACHE to a copied cache), or save the model with "
            "save_pretrained and set model.pretrained to that folder."
        ) from None


def _check_folder(folder: Path, name: str) -> Path:
    if not (folder / "config.json").is_file():
        raise VitcoreError(f"model.pretrained: {name!r} ({folder}) has no config.json; it is not a save_pretrained folder")
    return folder


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or None when the file does not exist."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise VitcoreError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
