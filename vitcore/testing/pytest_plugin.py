"""vitcore's pytest plugin: every test starts from a clean vitcore.

Registered with the ``pytest11`` entry point ``vitcore``, so it is active wherever vitcore is
installed: in vitcore's own tests and in every plugin package's. Around each test it sets
``VITCORE_CACHE`` to ``<tmp_path>/cache`` (generated data sets and caches never leak between
tests or into the user's cache), removes ``VITCORE_LOAD_PLUGINS`` and resets the plugin host, so
plugins registered or broken by one test are gone in the next. Turn it off with
``-p no:vitcore``, or for a project with ``vitcore_isolation = false`` in its pytest settings.
"""

from __future__ import annotations

from typing import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("vitcore_isolation", type="bool", default=True,
                  help="vitcore: a private VITCORE_CACHE, no VITCORE_LOAD_PLUGINS and a fresh plugin host per test")


@pytest.fixture(autouse=True)
def _vitcore_isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test: its own vitcore cache folder, no plugin selection and a fresh plugin host."""
    if not request.config.getini("vitcore_isolation"):
        yield
        return
    from vitcore.testing.host import isolated

    with isolated(request.getfixturevalue("tmp_path") / "cache"):
        yield
