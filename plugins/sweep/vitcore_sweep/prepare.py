"""A sweep file checked against its base spec and Optuna, before anything is written or trained.

``prepare`` is what ``vitcore sweep validate`` and ``vitcore sweep run`` both call: every field
path of the space must exist in the base spec (with its defaults filled in), every range end and
every choice must be accepted by the spec and the component's own Options model (a spec is
resolved with that value, and preflighted), and the sampler and pruner must build. Each problem
names the sweep field; the command exits 2.

A trial is then the base spec with ``--set`` overrides (``trial_overrides``): ``vitcore run BASE
--set train.lr=0.001 ...``, so relative paths in the base spec mean what they mean for the user's
own runs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vitcore.api import SpecError, load_spec, preflight, read_spec_file
from vitcore_sweep.sweepfile import LOWER_IS_BETTER, SweepFile, read_sweep_file

#: The metric sink through which a trial reports to its study (``vitcore_sweep.sink``).
SINK = "optuna_trial"
_MISSING = object()


@dataclass
class Sweep:
    """A validated sweep: the file, its base spec resolved, and where its trials go."""

    path: Path
    file: SweepFile
    name: str
    base_path: Path
    #: The base spec with every default filled in (what the space's paths address).
    base: dict[str, Any]
    #: The base spec as written (to learn which paths ``--set`` can reach directly).
    base_raw: dict[str, Any]
    metric: str
    direction: str
    epochs: int
    sweep_dir: Path
    trials: int | None
    time_budget_s: float | None

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{self.sweep_dir / 'study.db'}"

    def definition(self) -> dict[str, Any]:
        """What makes two runs of the command the same sweep (the trial count and budget may change)."""
        f = self.file
        return {
            "name": self.name, "base_path": str(self.base_path), "base": self.base, "metric": self.metric,
            "direction": self.direction, "space": {p: d.model_dump(by_alias=True, exclude_defaults=True)
                                                   for p, d in f.space.items()},
            "sampler": f.sampler.model_dump(), "pruner": f.pruner.model_dump(),
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.definition(), sort_keys=True, default=str).encode()).hexdigest()

    def record(self, storage_url: str) -> dict[str, Any]:
        """sweep.json: what ``vitcore sweep show`` needs to find the study and describe it."""
        return {"sweep_file": str(self.path), "storage": storage_url, "study": self.name,
                "fingerprint": self.fingerprint(), **self.definition()}


def _lookup(data: Any, parts: list[str]) -> Any:
    node = data
    for part in parts:
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return _MISSING
            node = node[int(part)]
        elif isinstance(node, Mapping):
            if part not in node:
                return _MISSING
            node = node[part]
        else:
            return _MISSING
    return node


def _missing_field_message(base: Mapping[str, Any], parts: list[str]) -> str:
    """Say where the path leaves the base spec, and what is there instead."""
    for depth in range(len(parts)):
        parent = _lookup(base, parts[:depth])
        if _lookup(parent, [parts[depth]]) is _MISSING:
            where = ".".join(parts[:depth]) or "the spec"
            if isinstance(parent, list):
                return f"{where} is a list of {len(parent)} item(s); {parts[depth]!r} is not an index of it"
            if isinstance(parent, Mapping):
                close = difflib.get_close_matches(parts[depth], list(parent), n=3)
                hint = f"; did you mean {' or '.join(close)}?" if close else f"; its fields: {', '.join(parent)}"
                return f"{where} has no field {parts[depth]!r}{hint}"
            return f"{where} is a value ({parent!r}), not an object with fields"
    return "not found"


def _set(path: str, value: Any) -> str:
    return f"{path}={json.dumps(value)}"


def reach_overrides(raw: Mapping[str, Any], base: Mapping[str, Any], paths: list[str]) -> list[str]:
    """``--set`` overrides that make each path reachable in the spec as written: a list the spec
    leaves to its default (``augmentations``) is written out first, so ``augmentations.0.p`` can be
    set inside it."""
    out: list[str] = []
    for path in paths:
        parts = path.split(".")
        for depth in range(1, len(parts)):
            if _lookup(raw, parts[:depth]) is _MISSING:
                prefix = parts[:depth]
                # A dict is created by --set itself; a list (anywhere below) has to be spelled out.
                if any(isinstance(_lookup(base, parts[:d]), list) for d in range(depth, len(parts))):
                    out.append(_set(".".join(prefix), _lookup(base, prefix)))
                break
    return list(dict.fromkeys(out))


def prepare(path: Path, trials: int | None = None) -> Sweep:
    """Read ``path`` and check everything a trial would refuse; raise SpecError naming the field."""
    path = Path(path)
    sweep_file = read_sweep_file(path)
    source = str(path)
    base_path = (path.absolute().parent / Path(sweep_file.base).expanduser()).absolute()
    if not base_path.is_file():
        raise SpecError(f"{source}: base: {sweep_file.base} not found (looked for {base_path}); "
                        f"give the run spec, relative to the sweep file's folder")
    try:
        resolved = load_spec(base_path)
        preflight(resolved)
    except SpecError as exc:
        raise SpecError(f"{source}: base: the base spec does not validate:\n{exc}") from None
    base = resolved.to_dict()
    base_raw = read_spec_file(base_path)
    metric = sweep_file.metric or base["train"]["best_metric"]
    implied = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    direction = sweep_file.direction or implied
    if direction != implied:
        raise SpecError(f"{source}: direction: {metric} is {'lower' if implied == 'minimize' else 'higher'} "
                        f"when better; use direction: {implied} (or leave it out)")
    name = sweep_file.name or path.stem
    problems: list[str] = []
    if sweep_file.name is None and not _valid_name(name):
        problems.append(f"{source}: name: the file's name {name!r} is not a valid sweep name; set name: "
                        f"(letters, digits, '.', '_', '-')")
    for param, dim in sweep_file.space.items():
        parts = param.split(".")
        current = _lookup(base, parts)
        if current is _MISSING:
            problems.append(f"{source}: space.{param}: no such field in the base spec {sweep_file.base} "
                            f"(with its defaults): {_missing_field_message(base, parts)}")
            continue
        if isinstance(current, (Mapping, list)):
            problems.append(f"{source}: space.{param}: is {'an object' if isinstance(current, Mapping) else 'a list'} "
                            f"in the base spec; address one field inside it")
            continue
        reach = reach_overrides(base_raw, base, [param])
        for value in dim.edge_values():
            refusal = _refusal(base_path, reach + [_set(param, value)])
            if refusal:
                problems.append(f"{source}: space.{param}: {value!r} is refused by the base spec: {refusal}")
    for i, entry in enumerate(sweep_file.enqueue):
        if problems:
            break
        refusal = _refusal(base_path, reach_overrides(base_raw, base, list(entry))
                           + [_set(p, v) for p, v in entry.items()])
        if refusal:
            problems.append(f"{source}: enqueue[{i}]: refused by the base spec: {refusal}")
    if problems:
        raise SpecError("\n".join(problems))

    from vitcore_sweep.optuna_setup import build_pruner, build_sampler, grid_size, pruner_options

    build_sampler(sweep_file.sampler, sweep_file.space, field=f"{source}: sampler")
    epochs = int(base["train"]["epochs"])
    build_pruner(pruner_options(sweep_file.pruner, epochs), field=f"{source}: pruner")
    target = trials if trials is not None else sweep_file.trials
    if sweep_file.sampler.type == "grid":
        size = grid_size(sweep_file.space)
        target = size if target is None else min(target, size)
    output_root = (path.absolute().parent / sweep_file.output_dir) if sweep_file.output_dir else Path(base["output_dir"])
    sweep_dir = output_root.absolute() / name
    return Sweep(path=path, file=sweep_file, name=name, base_path=base_path, base=base, base_raw=base_raw,
                 metric=metric, direction=direction, epochs=epochs, sweep_dir=sweep_dir, trials=target,
                 time_budget_s=sweep_file.time_budget_s)


def _valid_name(name: str) -> bool:
    import re

    from vitcore_sweep.sweepfile import NAME_RE

    return re.match(NAME_RE, name) is not None


def _refusal(base_path: Path, overrides: list[str]) -> str | None:
    """The first line the spec (and the component's Options) answers with these overrides, or None."""
    try:
        preflight(load_spec(base_path, overrides))
    except SpecError as exc:
        first = str(exc).splitlines()[0]
        return first.split(": ", 1)[1] if first.startswith(str(base_path)) else first
    return None


def trial_overrides(sweep: Sweep, number: int, params: Mapping[str, Any], storage_url: str) -> list[str]:
    """The ``--set`` overrides that turn the base spec into trial ``number``'s spec."""
    from vitcore_sweep.optuna_setup import pruner_options

    base = sweep.base
    sinks = [s for s in base["sinks"] if s.get("type") != SINK]
    sinks.append({"type": SINK, "storage": storage_url, "study": sweep.name, "trial": number,
                  "metric": sweep.metric, "pruner": pruner_options(sweep.file.pruner, sweep.epochs)})
    meta = {**base.get("meta", {}), "sweep": {"name": sweep.name, "trial": number, "params": dict(params)}}
    return [
        *reach_overrides(sweep.base_raw, base, list(params)),
        *(_set(p, v) for p, v in params.items()),
        _set("name", f"trial-{number}"),
        _set("output_dir", str(sweep.sweep_dir)),
        _set("train.best_metric", sweep.metric),
        _set("sinks", sinks),
        _set("meta", meta),
    ]
