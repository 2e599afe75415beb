"""Relative paths in a spec: resolved against the spec file's folder, made absolute once.

The rule (docs/SPEC.md, "Paths"): a path written in a spec file is relative to that file's
folder; a path given on the command line (``--set FIELD=VALUE``) is relative to the working
directory, as shell paths are; a spec given as a dict (``spec.load_dict``) resolves against the
``base_dir`` passed, else the working directory. ``output_dir`` follows the same rule when it is
written; left out, its default ``runs`` is in the working directory (where ``vitcore runs list``
and ``vitcore dashboard`` look by default).

Every option marked ``SpecPath`` (``vitcore.components.PathOption``), ``model.init_from`` and
``output_dir`` are made absolute when the spec is resolved, so components receive absolute
paths and the run's spec.json records them: ``vitcore resume`` and ``vitcore export`` then work
from any folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence, Union, get_args, get_origin

from pydantic import BaseModel

from vitcore.components import PathOption

#: A field's place in the spec, as the error messages print it: ("data", "root"), ("sinks", 0, "dir").
Location = tuple[Union[str, int], ...]


def absolute_path(value: str, base: Path, or_name: bool = False) -> str:
    """``value`` with ``~`` expanded, joined to ``base`` unless absolute, ``..`` folded away.

    Symbolic links are kept as written (``os.path.abspath``, not ``Path.resolve``): a data
    folder that is a link stays the link the user named. With ``or_name`` a relative value that
    names no existing path is returned as it is (a hub id such as ``google/vit-base-patch16-224``).
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return os.path.abspath(path)
    joined = Path(base) / path
    if or_name and not joined.exists():
        return value
    return os.path.abspath(joined)


def path_marker(annotation: Any) -> PathOption | None:
    """The ``PathOption`` inside a field's type (``SpecPath``, ``SpecPath | None``, ``list[SpecPath]``)."""
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, PathOption):
            return meta
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        found = path_marker(arg)
        if found is not None:
            return found
    return None


def path_fields(options: type[BaseModel]) -> Iterator[tuple[str, PathOption]]:
    """``(field name, marker)`` of every path option of an Options model."""
    for name, info in options.model_fields.items():
        marker = next((m for m in info.metadata if isinstance(m, PathOption)), None) or path_marker(info.annotation)
        if marker is not None:
            yield name, marker


def from_command_line(location: Location, overridden: Sequence[Sequence[str]]) -> bool:
    """Whether a ``--set`` wrote the field at ``location`` (itself or an object holding it)."""
    where = [str(part) for part in location]
    return any(list(path) == where[: len(path)] for path in overridden)


def absolute_options(options: BaseModel, location: Location, base_dir: Path,
                     overridden: Sequence[Sequence[str]] = ()) -> BaseModel:
    """A copy of a component's validated options with every path option absolute."""
    update: dict[str, Any] = {}
    for name, marker in path_fields(type(options)):
        value = getattr(options, name)
        if value is None:
            continue
        base = Path.cwd() if from_command_line(location + (name,), overridden) else base_dir
        if isinstance(value, str):
            update[name] = absolute_path(value, base, marker.or_name)
        elif isinstance(value, (list, tuple)):
            update[name] = type(value)(absolute_path(v, base, marker.or_name) if isinstance(v, str) else v
                                       for v in value)
    return options.model_copy(update=update) if update else options


def base_for(location: Location, base_dir: Path, overridden: Sequence[Sequence[str]]) -> Path:
    """The folder a relative value at ``location`` is relative to."""
    return Path.cwd() if from_command_line(location, overridden) else base_dir
