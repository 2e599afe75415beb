"""The sweep file (YAML or JSON), validated by pydantic with field-path errors like the run spec's.

```yaml
name: shapes-lr-depth            # default: the file's name
base: shapes.json                # the run spec every trial starts from (relative to this file)
metric: val_acc1                 # default: the base spec's train.best_metric
trials: 20                       # and/or time_budget: 2h
sampler: tpe                     # tpe | random | grid | cmaes, or {type: tpe, seed: 0, ...}
pruner: median                   # median | percentile | hyperband | successive_halving | none
space:
  train.lr: {loguniform: [1.0e-4, 3.0e-3]}
  model.depth: {int: [2, 8]}
```

Only the file's shape is checked here; ``prepare`` checks it against the base spec and Optuna.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vitcore.api import SpecError
from vitcore_sweep.space import Dimension, Scalar

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
METRICS = ("val_acc1", "val_acc5", "val_loss")
#: Lower is better for these; higher for the rest.
LOWER_IS_BETTER = {"val_loss"}
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "none")
#: Spec fields every trial's spec gets from the sweep: they cannot be searched.
OWNED_BY_SWEEP = ("name", "output_dir", "sinks", "meta", "train.best_metric")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class SamplerSpec(BaseModel):
    """``{type: NAME, seed: N, ...}``: further keys are keyword arguments of Optuna's sampler."""

    model_config = ConfigDict(extra="allow")
    type: Literal["tpe", "random", "grid", "cmaes"] = Field("tpe", description="Optuna's search algorithm.")
    seed: int | None = Field(None, description="Seed of the sampler, for a repeatable sequence of trials.")

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PrunerSpec(BaseModel):
    """``{type: NAME, ...}``: further keys are keyword arguments of Optuna's pruner."""

    model_config = ConfigDict(extra="allow")
    type: Literal["median", "percentile", "hyperband", "successive_halving", "none"] = Field(
        "median", description="How hopeless trials are stopped early, after each epoch."
    )

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SweepFile(BaseModel):
    """A hyperparameter sweep over a base run spec."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=NAME_RE, description="Sweep name (default: the file's name).")
    base: str = Field(description="The run spec every trial starts from; relative to the sweep file's folder.")
    metric: Literal["val_acc1", "val_acc5", "val_loss"] | None = Field(
        None, description="What the sweep optimises (default: the base spec's train.best_metric)."
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="Default: minimize for val_loss, maximize for the accuracies."
    )
    trials: int | None = Field(None, ge=1, description="Trials to finish (completed or pruned).")
    time_budget: Union[float, str, None] = Field(
        None, description="No new trial starts after this long: seconds, or e.g. 90m, 2h."
    )
    sampler: SamplerSpec = Field(default_factory=SamplerSpec, description="tpe, random, grid or cmaes.")
    pruner: PrunerSpec = Field(default_factory=PrunerSpec, description="median, percentile, hyperband, "
                               "successive_halving or none.")
    space: dict[str, Dimension] = Field(description="Spec field (addressed like --set) -> its range or choices.")
    enqueue: list[dict[str, Scalar]] = Field(
        default_factory=list, description="Parameter sets tried first (e.g. the base spec's own values)."
    )
    output_dir: str | None = Field(
        None, description="Root of the sweep folder, relative to the sweep file (default: the base's output_dir)."
    )

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @field_validator("time_budget")
    @classmethod
    def _duration(cls, value: float | str | None) -> float | str | None:
        if value is not None:
            seconds = parse_duration(value)
            if seconds <= 0:
                raise ValueError("must be a positive duration")
        return value

    @field_validator("space")
    @classmethod
    def _paths(cls, space: dict[str, Dimension]) -> dict[str, Dimension]:
        if not space:
            raise ValueError("give at least one field to search, e.g. train.lr: {loguniform: [1e-4, 3e-3]}")
        for path in space:
            if not all(path.split(".")):
                raise ValueError(f"{path!r}: address a field like --set does, e.g. train.lr or augmentations.0.p")
            owned = next((o for o in OWNED_BY_SWEEP if path == o or path.startswith(o + ".")), None)
            if owned:
                raise ValueError(f"{path}: the sweep sets {owned} for every trial; it cannot be searched")
        return space

    @model_validator(mode="after")
    def _consistent(self) -> "SweepFile":
        if self.trials is None and self.time_budget is None:
            raise ValueError("trials: give the number of trials (and/or a time_budget)")
        for i, entry in enumerate(self.enqueue):
            for path, value in entry.items():
                if path not in self.space:
                    raise ValueError(f"enqueue[{i}]: {path} is not in space")
                if not self.space[path].contains(value):
                    raise ValueError(f"enqueue[{i}]: {path}: {value!r} is outside its range "
                                     f"({self.space[path].describe()})")
        return self

    @property
    def time_budget_s(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)


def parse_duration(value: float | str) -> float:
    """``3600``, ``"90m"``, ``"2h"`` -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (seconds, or a number with s, m, h or d: 90m, 2h)")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_sweep(data: Any, source: str) -> SweepFile:
    """Validate a sweep file's content; every problem is one line ``SOURCE: FIELD: message``."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a sweep file must be an object/mapping at the top level")
    try:
        return SweepFile.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see docs/TUNING.md)"
            # Whole-file rules (model validators) name their field at the start of the message.
            where = f"{_location(tuple(err['loc']))}: " if err["loc"] else ""
            lines.append(f"{source}: {where}{msg}")
        raise SpecError("\n".join(dict.fromkeys(lines))) from None


def read_sweep_file(path: Path) -> SweepFile:
    """Read and validate a sweep file (``.yaml``/``.yml`` or JSON)."""
    if not path.is_file():
        raise SpecError(f"{path}: sweep file not found (give the path of a .yaml or .json file)")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except Exception as exc:  # yaml.YAMLError
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    return parse_sweep(data, str(path))
