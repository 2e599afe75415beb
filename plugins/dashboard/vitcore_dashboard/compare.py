"""Spec differences between runs, grouped by component.

Lists of components (augmentations, sinks, visualizers, exporters) are matched by their
``type``, not by their position: adding mixup in front of a flip shows as "mixup added", not as
every later entry changing.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

ABSENT = None  # what a run without that setting shows


def _is_component_list(value: Any) -> bool:
    """A list of ``{"type": ...}`` entries; an empty list counts (it lists no component)."""
    return isinstance(value, list) and all(isinstance(v, dict) and isinstance(v.get("type"), str) for v in value)


def _flatten(value: Any, prefix: str, group: str, out: dict[tuple[str, str], Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), group, out)
    else:
        out[(group, prefix)] = value


def flatten_spec(spec: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """``{(group, key): value}``: group ``model``, ``train``, ``augmentations: mixup``, ``run``."""
    out: dict[tuple[str, str], Any] = {}
    for section, value in spec.items():
        if _is_component_list(value):
            seen: dict[str, int] = {}
            for entry in value:
                kind = entry["type"]
                seen[kind] = seen.get(kind, 0) + 1
                label = kind if seen[kind] == 1 else f"{kind} #{seen[kind]}"
                group = f"{section}: {label}"
                out[(group, "(listed)")] = "yes"
                for key, option in entry.items():
                    if key != "type":
                        _flatten(option, key, group, out)
        elif isinstance(value, dict):
            _flatten(value, "", section, out)
        else:
            out[("run", section)] = value
    return out


def _same(values: Sequence[Any]) -> bool:
    dumped = [json.dumps(v, sort_keys=True, default=str) for v in values]
    return len(set(dumped)) == 1


def spec_differences(specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{"group", "rows": [{"key", "values": [one per spec]}]}]`` for the settings that differ."""
    flats = [flatten_spec(s if isinstance(s, dict) else {}) for s in specs]
    keys: list[tuple[str, str]] = []
    for flat in flats:
        keys.extend(k for k in flat if k not in keys)
    groups: dict[str, list[dict[str, Any]]] = {}
    for group, key in keys:
        values = [flat.get((group, key), ABSENT) for flat in flats]
        if _same(values):
            continue
        groups.setdefault(group, []).append({"key": key or "(value)", "values": values})
    return [{"group": group, "rows": rows} for group, rows in groups.items()]
