"""Where vitcore keeps files of its own: one cache folder and one configuration folder.

platformdirs gives each operating system's usual place (``~/.cache/vitcore`` and
``~/.config/vitcore`` on Linux, honouring ``XDG_CACHE_HOME``/``XDG_CONFIG_HOME``; ``~/Library/Caches``
on macOS; ``%LOCALAPPDATA%`` on Windows); ``VITCORE_CACHE`` and ``VITCORE_CONFIG`` override them
(tests, shared disks, a cluster's scratch space). Read on every call, so an environment change in
a running process (a test's monkeypatch) takes effect.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "CONFIG_ENV", "cache_dir", "config_dir"]

CACHE_ENV = "VITCORE_CACHE"
CONFIG_ENV = "VITCORE_CONFIG"
_APP = "vitcore"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The folder for generated data sets, decoded-image caches and downloads (may not exist yet)."""
    import platformdirs

    return _from_env(CACHE_ENV) or platformdirs.user_cache_path(_APP, appauthor=False)


def config_dir() -> Path:
    """The folder for user configuration (may not exist yet)."""
    import platformdirs

    return _from_env(CONFIG_ENV) or platformdirs.user_config_path(_APP, appauthor=False)
