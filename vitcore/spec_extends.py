"""Spec inheritance: ``"extends": "base.json"`` or ``"extends": "recipe:NAME"``, and where each value came from.

A spec file may name one base (or a list of bases, applied in order) that it builds on. The base
is read first (its own ``extends`` too: chains are allowed, cycles are an error naming the chain),
then the file's own values are merged on top with the rules of ``--set``:

* objects merge key by key (``{"train": {"epochs": 30}}`` changes one field of the base's train);
* a list (``augmentations``, ``sinks``...) is replaced whole, unless the file addresses items by
  index: ``{"augmentations": {"1": {"magnitude": 5}}}`` merges into the base's second item;
* a component entry that names another ``type`` than the base's replaces the base's entry whole
  (options of one component never leak into another's, MMEngine's ``_delete_`` surprise);
* anything else replaces the base's value.

Every leaf remembers the file that set it (``Merged.sources``): validation errors name that file,
``vitcore validate --print`` lists it per field, and relative paths written in a base file stay
relative to the base file's folder (the project's rule for paths in spec files). ``--set`` values
are recorded as ``--set``. Built-in recipes are JSON files in ``vitcore/recipes/`` (package data).

The merged spec is what resolves, so a run folder's spec.json holds the merged values and no
``extends``: a resume never needs the base files again.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

from vitcore.errors import SpecError

#: The key naming a spec's base(s).
EXTENDS = "extends"
#: ``extends`` values naming a built-in recipe.
RECIPE_PREFIX = "recipe:"
#: The source recorded for values given on the command line.
SET_SOURCE = "--set"
#: The source shown for values no file set (the spec's or the component's default).
DEFAULT_SOURCE = "default"

#: A place in the spec: ("train", "epochs"), ("augmentations", 1, "magnitude").
Loc = tuple[Union[str, int], ...]


@dataclass
class Merged:
    """A spec file with its bases merged in, and the source of every leaf."""

    data: dict[str, Any]
    #: Leaf location -> the label of the file (or ``--set``) that set it. Empty objects and
    #: lists are leaves too.
    sources: dict[Loc, str] = field(default_factory=dict)
    #: Label -> folder of each file read (relative paths in it are relative to that folder).
    folders: dict[str, Path] = field(default_factory=dict)
    #: The label of the file asked for (the last in every chain).
    top: str = "<spec>"

    def source_of(self, loc: Sequence[Union[str, int]]) -> str | None:
        """The file that set ``loc``: itself, the object that holds it, or, for an object, the one
        file all of its leaves come from (several: all of them); None when no file set it."""
        loc = tuple(loc)
        if loc in self.sources:
            return self.sources[loc]
        for n in range(len(loc) - 1, -1, -1):
            if loc[:n] in self.sources:
                return self.sources[loc[:n]]
        inside = list(dict.fromkeys(s for key, s in self.sources.items() if key[: len(loc)] == loc))
        return " and ".join(inside) if inside else None


# ----------------------------------------------------------------------------------------------
# Built-in recipes
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    purpose: str


def _recipes_folder() -> Path:
    return Path(str(resources.files("vitcore.recipes")))


def recipes() -> list[Recipe]:
    """The built-in recipes, by name, with the one-line purpose each states in ``meta.purpose``."""
    found = []
    for path in sorted(_recipes_folder().glob("*.json")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8")).get("meta", {})
        except (OSError, ValueError):
            meta = {}
        found.append(Recipe(path.stem, path, str(meta.get("purpose", ""))))
    return found


def recipe_path(name: str, asked_by: str = "") -> Path:
    """The file of built-in recipe ``name``; an unknown name is a SpecError naming the known ones."""
    path = _recipes_folder() / f"{name}.json"
    if path.is_file():
        return path
    names = [r.name for r in recipes()]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"did you mean {RECIPE_PREFIX}{close[0]}? " if close else ""
    where = f"{asked_by}: {EXTENDS}: " if asked_by else ""
    raise SpecError(f"{where}no built-in recipe {name!r}; {hint}known: {', '.join(names) or 'none'} "
                    f"(`vitcore recipes list`)")


# ----------------------------------------------------------------------------------------------
# Reading a chain
# ----------------------------------------------------------------------------------------------


def read(path: str | Path, parse: Callable[[Path], dict[str, Any]]) -> Merged:
    """Read spec file ``path`` with every base it extends merged in (``parse`` reads one file)."""
    top = str(path)
    merged = _read(Path(path), top, parse, [])
    merged.top = top
    _anchor_base_paths(merged, Path(path).absolute().parent)
    return merged


def _label(path: Path, recipe: str | None) -> str:
    return f"{RECIPE_PREFIX}{recipe}" if recipe else os.path.normpath(path)


def _read(path: Path, label: str, parse: Callable[[Path], dict[str, Any]],
          chain: list[tuple[Path, str]]) -> Merged:
    here = Path(os.path.abspath(path))
    if any(seen == here for seen, _ in chain):
        names = [name for _, name in chain] + [label]
        raise SpecError(f"{chain[-1][1]}: {EXTENDS}: the specs extend each other in a cycle: "
                        f"{' -> '.join(names)}; remove one of these 'extends'")
    own = parse(path)
    bases = own.pop(EXTENDS, None)
    merged = Merged(data={}, folders={label: here.parent}, top=label)
    for base_path, base_label in _bases(bases, path, label):
        base = _read(base_path, base_label, parse, chain + [(here, label)])
        _merge_into(merged, base)
    merge(merged, own, label)
    return merged


def _bases(value: Any, path: Path, label: str) -> Iterator[tuple[Path, str]]:
    if value is None:
        return
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise SpecError(f"{label}: {EXTENDS}: expected a spec file's path (relative to this file's folder), "
                        f"'{RECIPE_PREFIX}NAME' or a list of them; got {json.dumps(value)}")
    for name in names:
        if name.startswith(RECIPE_PREFIX):
            recipe = name[len(RECIPE_PREFIX):].strip()
            yield recipe_path(recipe, label), _label(Path(name), recipe)
            continue
        base = Path(name).expanduser()
        base = base if base.is_absolute() else path.parent / base
        if not base.is_file():
            raise SpecError(f"{label}: {EXTENDS}: base spec {name!r} not found (looked for "
                            f"{os.path.abspath(base)}); give a JSON/YAML spec file relative to {label}'s "
                            f"folder, or {RECIPE_PREFIX}NAME for a built-in recipe (`vitcore recipes list`)")
        yield base, _label(base, None)


def _merge_into(merged: Merged, base: Merged) -> None:
    """Apply an already merged base (its values and their sources) under what ``merged`` holds."""
    if not merged.data:
        merged.data = base.data
        merged.sources.update(base.sources)
    else:  # a second base in an ``extends`` list: applied on top of the first, leaf sources kept
        for key, value in base.data.items():
            _merge_value(merged, merged.data, key, value, (key,), lambda loc: base.source_of(loc) or base.top)
    merged.folders.update(base.folders)


# ----------------------------------------------------------------------------------------------
# Merging
# ----------------------------------------------------------------------------------------------


def merge(merged: Merged, over: Mapping[str, Any], label: str) -> None:
    """Merge ``over`` (one file's own values) into ``merged``, recording ``label`` as their source."""
    for key, value in over.items():
        _merge_value(merged, merged.data, key, value, (key,), lambda loc: label)


def _merge_value(merged: Merged, node: dict[str, Any], key: str, value: Any, loc: Loc,
                 source: Callable[[Loc], str]) -> None:
    current = node.get(key)
    if isinstance(value, dict) and isinstance(current, dict) and _same_component(current, value):
        for k, v in value.items():
            _merge_value(merged, current, k, v, loc + (k,), source)
    elif isinstance(value, dict) and isinstance(current, list) and value and all(_is_index(k) for k in value):
        for k, item in value.items():
            index = int(k)
            if index >= len(current):
                raise SpecError(f"{source(loc)}: {_format(loc)}.{k}: no item {index} to change: the base's "
                                f"list has {len(current)} item(s) (give the whole list to replace it)")
            if isinstance(item, dict) and isinstance(current[index], dict) and _same_component(current[index], item):
                for kk, vv in item.items():
                    _merge_value(merged, current[index], kk, vv, loc + (index, kk), source)
            else:
                current[index] = copy.deepcopy(item)
                _record(merged, loc + (index,), item, source)
    else:
        node[key] = copy.deepcopy(value)
        _record(merged, loc, value, source)


def _same_component(base: Mapping[str, Any], over: Mapping[str, Any]) -> bool:
    """False when ``over`` names another component type than ``base``: then it replaces it whole."""
    return "type" not in over or "type" not in base or over["type"] == base["type"]


def _is_index(key: Any) -> bool:
    return isinstance(key, str) and key.isdigit()


def _record(merged: Merged, loc: Loc, value: Any, source: Callable[[Loc], str]) -> None:
    """``value`` now sits at ``loc``: forget the sources of what it replaced, note its leaves'."""
    for key in [k for k in merged.sources if k[: len(loc)] == loc]:
        del merged.sources[key]
    for leaf in _leaves(value, loc):
        merged.sources[leaf] = source(leaf)


def _leaves(value: Any, loc: Loc) -> Iterator[Loc]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, loc + (k,))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, loc + (i,))
    else:
        yield loc


def _format(loc: Sequence[Union[str, int]]) -> str:
    from vitcore.spec import format_location

    return format_location(tuple(loc))


# ----------------------------------------------------------------------------------------------
# --set on top
# ----------------------------------------------------------------------------------------------


def apply_overrides(merged: Merged, overrides: Sequence[str]) -> None:
    """``--set`` each override (vitcore.spec.apply_overrides' rules) and record them as ``--set``."""
    from vitcore.spec import apply_overrides as apply, parse_override

    apply(merged.data, list(overrides))
    for text in overrides:
        parts, value = parse_override(text)
        loc: list[Union[str, int]] = []
        node: Any = merged.data
        for part in parts:
            key: Union[str, int] = int(part) if isinstance(node, list) else part
            loc.append(key)
            node = node[key] if isinstance(node, list) else node.get(key)
        _record(merged, tuple(loc), value, lambda _loc: SET_SOURCE)


# ----------------------------------------------------------------------------------------------
# Relative paths in base files
# ----------------------------------------------------------------------------------------------


def _anchor_base_paths(merged: Merged, top_dir: Path) -> None:
    """Make path fields set by a base file in another folder absolute against that folder."""
    foreign = {label for label, folder in merged.folders.items() if folder != top_dir}
    if not foreign or not any(s in foreign for s in merged.sources.values()):
        return
    from vitcore.spec_paths import absolute_path

    for loc, or_name in _path_locations(merged.data):
        label = merged.source_of(loc)
        if label not in foreign:
            continue
        parent, key = _node(merged.data, loc[:-1]), loc[-1]
        value = parent[key]
        base = merged.folders[label]
        if isinstance(value, str):
            parent[key] = absolute_path(value, base, or_name)
        elif isinstance(value, list):
            parent[key] = [absolute_path(v, base, or_name) if isinstance(v, str) else v for v in value]


def _node(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def _path_locations(data: Mapping[str, Any]) -> Iterator[tuple[Loc, bool]]:
    """``(location, or_name)`` of every path field the spec holds: the core's and each named
    component's ``SpecPath`` options (looked up in the registry; an unknown type is left to
    validation to report)."""
    from vitcore.spec import LIST_COMPONENTS, SINGLE_COMPONENTS

    for loc in (("output_dir",), ("model", "init_from"), ("distill", "teacher")):
        parent = data.get(loc[0]) if len(loc) > 1 else data
        if isinstance(parent, dict) and isinstance(parent.get(loc[-1]), str):
            yield loc, False
    entries: list[tuple[Loc, Any, str]] = [((f,), data.get(f), kind) for f, kind in SINGLE_COMPONENTS.items()]
    for f, kind in LIST_COMPONENTS.items():
        items = data.get(f)
        if isinstance(items, list):
            entries += [((f, i), item, kind) for i, item in enumerate(items)]
    for loc, entry, kind in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            continue
        for name, or_name in _component_paths(kind, entry["type"]):
            if isinstance(entry.get(name), (str, list)):
                yield loc + (name,), or_name


def _component_paths(kind: str, type_name: str) -> list[tuple[str, bool]]:
    from vitcore.errors import VitcoreError
    from vitcore.plugins import get_host
    from vitcore.spec_paths import path_fields

    try:
        component = get_host().registry(kind).get(type_name).component
    except VitcoreError:
        return []
    return [(name, marker.or_name) for name, marker in path_fields(component.Options)]


# ----------------------------------------------------------------------------------------------
# Errors and --print
# ----------------------------------------------------------------------------------------------

_LOC_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _parse_location(text: str) -> Loc:
    return tuple(int(index) if index else name for index, name in _LOC_PART.findall(text))


def attribute_errors(message: str, merged: Merged) -> str:
    """Rewrite ``TOP: field.path: problem`` lines so each names the file that set the field (a
    base: ``BASE: field: problem (extended by TOP)``; ``--set``: a note saying so)."""
    lines = []
    prefix = f"{merged.top}: "
    for line in message.splitlines():
        if line.startswith(prefix) and ": " in line[len(prefix):]:
            where, problem = line[len(prefix):].split(": ", 1)
            source = merged.source_of(_parse_location(where)) if where != "(top level)" else None
            if source == SET_SOURCE:
                line = f"{line} (given with --set)"
            elif source and source != merged.top:
                line = f"{source}: {where}: {problem} (extended by {merged.top})"
        lines.append(line)
    return "\n".join(lines)


def provenance(resolved: Mapping[str, Any], merged: Merged) -> list[tuple[str, Any, str]]:
    """``(field path, value, source)`` for every leaf of the resolved spec: the file that set it,
    ``--set``, or ``default`` (the spec's or the component's own)."""
    rows: list[tuple[str, Any, str]] = []

    def walk(value: Any, loc: Loc, raw_loc: Loc | None) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, loc + (k,), None if raw_loc is None else raw_loc + (k,))
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "type" in v for v in value):
            mapping = _match_components(value, _raw(merged.data, raw_loc))
            for i, v in enumerate(value):
                raw_index = mapping.get(i)
                walk(v, loc + (i,), None if raw_loc is None or raw_index is None else raw_loc + (raw_index,))
        else:
            source = _leaf_source(merged, raw_loc)
            rows.append((_format(loc), value, source))

    for key, value in resolved.items():
        walk(value, (key,), (key,))
    return rows


#: What ``_lookup`` returns for a path the data does not hold.
_ABSENT = object()


def _lookup(data: Any, loc: Loc | None) -> Any:
    """The value at ``loc`` (object keys, list indices), or ``_ABSENT``."""
    if loc is None:
        return _ABSENT
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return _ABSENT
    return data


def _raw(data: Any, loc: Loc | None) -> Any:
    value = _lookup(data, loc)
    return None if value is _ABSENT else value


def _match_components(resolved: list[dict[str, Any]], raw: Any) -> dict[int, int]:
    """Resolved list index -> the merged spec's index of the same entry (the core adds entries,
    e.g. the jsonl sink, that no file wrote)."""
    if not isinstance(raw, list):
        return {}
    mapping, j = {}, 0
    for i, entry in enumerate(resolved):
        if j < len(raw) and isinstance(raw[j], dict) and raw[j].get("type") == entry.get("type"):
            mapping[i] = j
            j += 1
    return mapping


def _leaf_source(merged: Merged, raw_loc: Loc | None) -> str:
    if _lookup(merged.data, raw_loc) is _ABSENT:
        return DEFAULT_SOURCE  # no file wrote it: the spec's or the component's default
    return merged.source_of(raw_loc) or DEFAULT_SOURCE




def format_provenance(rows: Sequence[tuple[str, Any, str]]) -> str:
    """The rows as aligned ``field = value   source`` lines."""
    shown = [(path, _short(json.dumps(value)), source) for path, value, source in rows]
    width = max((len(p) + len(v) + 3 for p, v, _ in shown), default=0)
    width = min(width, 72)
    return "\n".join(f"{(p + ' = ' + v):<{width}}  {s}" for p, v, s in shown)


def _short(text: str, limit: int = 60) -> str:
    """Long values (a recipe's reasons) cut to one readable line; the JSON on stdout has them whole."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
