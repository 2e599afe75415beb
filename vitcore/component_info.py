"""``vitcore plugins show NAME``: what a component is, who supplies it, and its options.

docs/SPEC.md lists the built-in components only; this reads the same facts from whatever is
loaded, a plugin's components included, with the defaults and descriptions of their Options.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from vitcore.components import KINDS
from vitcore.errors import VitcoreError


def describe_component(name: str) -> list[dict[str, Any]]:
    """One description per kind that has a component called ``name`` (usually one); a
    ``VitcoreError`` naming the closest names, and any plugin that failed to load, when none has."""
    from vitcore.plugins import get_host
    from vitcore.specdoc import option_rows

    host = get_host()
    found = []
    for kind in KINDS:
        registry = host.registry(kind)
        if name not in registry:
            continue
        entry = registry.get(name)  # a name two plugins claim raises, naming both
        info = host.infos.get(entry.plugin)
        rows = option_rows(entry.component.Options)
        found.append({
            "name": name,
            "kind": kind,
            "plugin": entry.plugin,
            "version": info.version if info is not None else None,
            "builtin": bool(info and info.builtin),
            "description": entry.component.summary(),
            "options": rows,
            "example": {"type": name, **{r["name"]: json.loads(r["default"]) for r in rows
                                          if r["default"] is not None and r["default"] != "(see below)"}},
        })
    if found:
        return found
    raise VitcoreError(_not_found(name, host))


def _not_found(name: str, host: Any) -> str:
    names = sorted({n for kind in KINDS for n in host.registry(kind).names()})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    message = f"plugins show: no component is called {name!r}"
    message += f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    message += " `vitcore plugins list --all` lists every component."
    failed = {p: why for kind in KINDS for p, why in host.registry(kind).failed.items()}
    for plugin, reason in sorted(failed.items()):
        message += f" Note: plugin {plugin} failed to load: {reason}"
    return message


def format_description(item: dict[str, Any]) -> str:
    """The text ``vitcore plugins show`` prints for one component."""
    source = "built in" if item["builtin"] else f"plugin {item['plugin']} {item['version'] or ''}".rstrip()
    lines = [f"{item['name']}  ({item['kind'][:-1]}, {source})"]
    if item["description"]:
        lines.append(f"  {item['description']}")
    if not item["options"]:
        lines += ["", "  No options."]
    else:
        lines += ["", "  options:"]
        width = max(len(r["name"]) for r in item["options"])
        for row in item["options"]:
            default = "required" if row["default"] is None else f"default {row['default']}"
            lines.append(f"    {row['name']:<{width}}  {row['type']}, {default}")
            if row["description"]:
                lines.append(f"    {'':<{width}}  {row['description']}")
    field = {"datasets": "data", "models": "model"}.get(item["kind"], item["kind"])
    lines += ["", f"  in a spec ({field}): {json.dumps(item['example'])}"]
    return "\n".join(lines)
