"""Registering a plugin object into the process's plugin host for the length of a test."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from vitcore.plugins import PluginInfo, get_host


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
