"""The process's plugin host in tests: a fresh one per test, a plugin registered for a block, and
what the host says about an installed plugin."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vitcore import plugins
from vitcore.paths import CACHE_ENV
from vitcore.plugins import LOAD_ENV, PluginInfo, get_host


@contextmanager
def isolated(cache_dir: Path) -> Iterator[None]:
    """For the block: ``VITCORE_CACHE`` set to ``cache_dir``, no ``VITCORE_LOAD_PLUGINS`` selection
    and a fresh plugin host (plugins load again on first use); all restored afterwards.

    What the pytest plugin does around every test (``vitcore.testing.pytest_plugin``); use it
    yourself around work a session-scoped fixture does, such as training a run once.
    """
    saved = {name: os.environ.get(name) for name in (CACHE_ENV, LOAD_ENV)}
    os.environ[CACHE_ENV] = str(cache_dir)
    os.environ.pop(LOAD_ENV, None)
    plugins.reset()
    try:
        yield
    finally:
        plugins.reset()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def installed_plugin(name: str) -> PluginInfo:
    """What the plugin host loaded for the installed distribution ``name`` (found through its
    entry point): status, errors, version, hooks and components. AssertionError if none."""
    host = get_host()
    info = host.infos.get(name)
    if info is None or info.builtin:
        found = ", ".join(sorted(i.name for i in host.plugins())) or "none"
        raise AssertionError(f"no installed plugin {name!r} was loaded (loaded: {found})")
    return info


@contextmanager
def registered_plugin(plugin: object, name: str) -> Iterator[PluginInfo]:
    """Make ``plugin`` (a module or object with ``@vitcore.hookimpl`` functions) available to specs
    inside the ``with`` block, then remove it, so tests neither need it installed nor leak it.

    A plugin that is already loaded (installed, found through its entry point) is used as it is
    and left in place. Raises AssertionError, with the host's messages, if it does not load cleanly.
    """
    host = get_host()
    if host.pm.is_registered(plugin):
        info = host.infos[host.pm.get_name(plugin)]
        if info.errors:
            raise AssertionError(f"plugin {info.name!r} is loaded with errors: {'; '.join(info.errors)}")
        yield info
        return
    existing = host.infos.get(name)
    if existing is not None:
        why = f" with errors: {'; '.join(existing.errors)}" if existing.errors else "; use another name"
        raise AssertionError(f"a plugin named {name!r} is already loaded{why}")
    info = host.register_plugin(plugin, name=name)
    try:
        if info.errors:
            raise AssertionError(f"plugin {name!r} does not register cleanly: {'; '.join(info.errors)}")
        yield info
    finally:
        if host.pm.has_plugin(name):
            host.pm.unregister(name=name)
        del host.infos[name]
        host._build_registries()  # the registries without its components
