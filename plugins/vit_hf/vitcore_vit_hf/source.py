"""Where a pretrained model's files are: a local folder, or a Hugging Face hub id.

A hub id's files come from the local HF cache when it holds them, else are downloaded into it
through huggingface_hub (``vitcore.api.HubRepo``: HF_HUB_OFFLINE, HF_ENDPOINT, HF_HUB_CACHE /
HF_HOME respected, each file checked against the hub's hash); offline or unreachable, the error
names the cache and how to copy the model by hand. Only what vitcore reads is fetched: the
config, the image processor's config and, when the weights are needed, one weight format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vitcore.api import HubRepo, VitcoreError

#: Weight files of a save_pretrained folder: (shard index, single file), in order of preference.
WEIGHT_FILES = (
    ("model.safetensors.index.json", "model.safetensors"),
    ("pytorch_model.bin.index.json", "pytorch_model.bin"),
)
#: How to do without the hub, for the offline/unreachable message.
_BY_HAND = "save the model with save_pretrained on any machine and set model.pretrained to that folder"

#: ``name`` or ``org/name``; anything else (``./x``, ``/abs``, ``a/b/c``) can only be a folder.
_HUB_ID = re.compile(r"^\w[\w.-]*(/\w[\w.-]*)?$")


def resolve_pretrained(name: str, base_dir: Path, weights: bool = True) -> Path:
    """The folder holding ``config.json`` for ``name``: a path (relative to ``base_dir``) or a hub id.

    ``weights=False`` (evaluate, predict, export: the run's checkpoint replaces every weight) fetches
    only the configs of a hub model.
    """
    path = Path(name).expanduser()
    folder = path if path.is_absolute() else base_dir / path
    if folder.is_dir():
        return _check_folder(folder, name)
    if not _HUB_ID.match(name):
        raise VitcoreError(f"model.pretrained: folder {folder} not found (give a save_pretrained folder or a hub id)")
    return _check_folder(_from_hub(name, weights), name)


def _from_hub(repo_id: str, weights: bool) -> Path:
    """The repo's snapshot folder in the cache, holding what vitcore reads (downloaded if missing)."""
    config = HubRepo(repo_id, origin="model.pretrained", by_hand=_BY_HAND).file("config.json")
    # Every later file from the config's commit, so the folder never mixes two versions of the repo.
    repo = HubRepo(repo_id, origin="model.pretrained", by_hand=_BY_HAND, revision=config.parent.name)
    repo.optional("preprocessor_config.json")
    if weights:
        found = repo.first([name for pair in WEIGHT_FILES for name in (pair[1], pair[0])])
        if found.name.endswith(".index.json"):
            for shard in sorted(set((read_json(found) or {}).get("weight_map", {}).values())):
                repo.file(shard)
    return config.parent


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
