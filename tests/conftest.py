"""Shared fixtures: a clean plugin host per test and a private cache folder."""

from __future__ import annotations

import pytest

from vitcore import plugins


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test: its own cache folder, a fresh plugin host, and no stray plugin selection."""
    monkeypatch.setenv("VITCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VITCORE_LOAD_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()
