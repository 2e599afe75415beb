"""Pretrained files from the Hugging Face hub, for the model plugins (``timm_vit``, ``hf_vit``).

A file already in the local HF cache is used without asking the network (a run reads the same bytes
each time, and an offline machine works). Otherwise it is downloaded through huggingface_hub, into
its cache, with its progress bar, and checked against the hash the hub gives it (the blob's name:
a SHA-256 for LFS files, the git blob SHA-1 for the others). Offline (``HF_HUB_OFFLINE``) or with the
hub unreachable, one message names the model, the cache folder and how to copy the weights by hand.

The environment is read at each call, not when huggingface_hub was imported: ``HF_HUB_OFFLINE``,
``HF_ENDPOINT``, ``HF_HUB_CACHE`` / ``HF_HOME`` (huggingface_hub fixes its own constants at import).
huggingface_hub is imported inside the functions; the core does not depend on it, the model
plugins that call this do.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from vitcore.errors import VitcoreError

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Seconds to wait for the hub's answer to a file's metadata before calling it unreachable.
METADATA_TIMEOUT_S = 10.0
_TRUE = {"1", "on", "yes", "true"}


def hub_cache_dir() -> Path:
    """The HF hub cache as huggingface_hub resolves it: HF_HUB_CACHE, else HF_HOME/hub."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(os.environ.get("HF_HOME") or Path(xdg) / "huggingface").expanduser() / "hub"


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) forbids the network now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@dataclass
class HubRepo:
    """One model repo's files: from the cache, or downloaded on a miss.

    ``origin`` is the spec field that named it (every message starts with it); ``by_hand`` ends the
    offline/unreachable message with the spec's own way round the hub (e.g. "set model.weights to a
    local weight file").
    """

    repo_id: str
    origin: str
    by_hand: str
    revision: str = "main"
    cache: Path = field(default_factory=hub_cache_dir)

    def file(self, filename: str) -> Path:
        """``filename`` of the repo; an error when the repo has no such file."""
        found = self.first((filename,))
        assert found is not None
        return found

    def optional(self, filename: str) -> Path | None:
        """``filename`` of the repo, or None when the repo has none (or offline, when none is cached)."""
        cached = self.cached(filename)
        if cached is not None or hub_offline():
            return cached
        return self._download(filename) if self._exists(filename) else None

    def first(self, filenames: Sequence[str]) -> Path:
        """The first of ``filenames`` the cache holds, else the first the hub has, downloaded."""
        for name in filenames:
            cached = self.cached(name)
            if cached is not None:
                return cached
        if hub_offline():
            raise self._unavailable(filenames, "HF_HUB_OFFLINE is set, which forbids downloading",
                                    "unset HF_HUB_OFFLINE to download it")
        for name in filenames:
            if self._exists(name):
                return self._download(name)
        raise VitcoreError(f"{self.origin}: the Hugging Face repo {self.repo_id} (at {hub_endpoint()}) has no "
                           f"{' or '.join(filenames)}; it is not a checkpoint this model reads")

    def cached(self, filename: str) -> Path | None:
        """The cached copy of ``filename`` at ``revision``, never touching the network."""
        from huggingface_hub import try_to_load_from_cache

        try:
            found = try_to_load_from_cache(self.repo_id, filename, cache_dir=self.cache, revision=self.revision)
        except ValueError as exc:  # HFValidationError: a malformed repo id
            raise VitcoreError(f"{self.origin}: {self.repo_id!r} is not a Hugging Face repo id ({exc})") from None
        return Path(found) if isinstance(found, str) else None

    @property
    def folder(self) -> Path:
        """The repo's folder in the cache (``models--org--name``)."""
        return self.cache / f"models--{self.repo_id.replace('/', '--')}"

    # -- the network ------------------------------------------------------------------------------

    def _exists(self, filename: str) -> bool:
        """Whether the hub has ``filename``: one metadata request, no retries, so an unreachable hub
        is told at once (huggingface_hub's download would retry for half a minute first)."""
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        endpoint = hub_endpoint()
        url = hf_hub_url(self.repo_id, filename, revision=self.revision, endpoint=endpoint)
        try:
            get_hf_file_metadata(url, timeout=METADATA_TIMEOUT_S, endpoint=endpoint)
            return True
        except EntryNotFoundError:
            return False
        except GatedRepoError:
            raise VitcoreError(f"{self.origin}: {self.repo_id} is a gated repo at {endpoint}: accept its terms on "
                               "the hub, then log in (`hf auth login`, or set HF_TOKEN)") from None
        except RepositoryNotFoundError:
            raise VitcoreError(f"{self.origin}: the Hugging Face hub at {endpoint} has no model {self.repo_id} "
                               "(check the name; a private repo needs `hf auth login` or HF_TOKEN)") from None
        except RevisionNotFoundError:
            raise VitcoreError(f"{self.origin}: {self.repo_id} has no revision {self.revision!r} "
                               f"at {endpoint}") from None
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise self._unavailable((filename,), f"the hub at {endpoint} answered HTTP {status}",
                                    "try again later") from None
        except Exception as exc:  # httpx's connect errors and timeouts: the hub cannot be reached
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise self._unavailable((filename,), f"the hub at {endpoint} cannot be reached ({reason})",
                                    "check the network (or HF_ENDPOINT)") from None

    def _download(self, filename: str) -> Path:
        from huggingface_hub import hf_hub_download

        print(f"{self.origin}: downloading {self.repo_id} {filename} from {hub_endpoint()} into {self.cache}",
              file=sys.stderr, flush=True)
        try:
            path = Path(hf_hub_download(self.repo_id, filename, revision=self.revision, cache_dir=self.cache,
                                        endpoint=hub_endpoint()))
        except Exception as exc:  # the connection dropped mid-file, a full disk...
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise self._unavailable((filename,), f"the download failed ({reason})", "run the command again") from None
        verify_blob(path, f"{self.origin}: {self.repo_id} {filename}")
        return path

    def _unavailable(self, filenames: Sequence[str], reason: str, retry: str) -> VitcoreError:
        folder = self.folder.name
        return VitcoreError(
            f"{self.origin}: {self.repo_id} is not in the Hugging Face cache and {reason}. The cache is "
            f"{self.cache} (HF_HUB_CACHE, else HF_HOME/hub; now HF_HUB_CACHE={os.environ.get('HF_HUB_CACHE', '')!r}, "
            f"HF_HOME={os.environ.get('HF_HOME', '')!r}); it has no {' or '.join(filenames)} in {self.folder}. "
            f"To fix: {retry}; or copy the weights by hand: on a machine with internet run "
            f"`hf download {self.repo_id} --cache-dir DIR` and copy DIR/{folder} into {self.cache} "
            f"(or point HF_HUB_CACHE at a copied cache); or {self.by_hand}."
        )


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def verify_blob(path: Path, label: str) -> None:
    """Check a freshly downloaded cache file against the hash its blob is named by; a mismatch
    deletes the file (a retry downloads it again) and raises."""
    blob = path.resolve()
    expected = blob.name
    if _SHA256.match(expected):
        actual = _digest(blob, hashlib.sha256())
        kind = "SHA-256"
    elif _SHA1.match(expected):  # a git blob's id: sha1 of "blob <size>\0" + content
        actual = _digest(blob, hashlib.sha1(f"blob {blob.stat().st_size}\0".encode()))
        kind = "git SHA-1"
    else:  # a copy without symlinks (Windows) keeps no hash in its name: nothing to compare
        return
    if actual != expected:
        for stale in {path, blob}:
            stale.unlink(missing_ok=True)
        raise VitcoreError(f"{label}: the downloaded file's {kind} is {actual}, but the hub says {expected}; the "
                           "file was deleted from the cache. Run the command again to download it again")


def _digest(path: Path, hasher: Any) -> str:
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()
