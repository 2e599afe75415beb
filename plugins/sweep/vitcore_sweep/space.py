"""One search-space dimension of a sweep file: ``{loguniform: [lo, hi]}``, ``{int: [lo, hi]}``,
``{float: [lo, hi], step: 0.5}``, ``{choice: [a, b, c]}``.

Kept free of Optuna at import time: the sweep file is validated (and ``vitcore --help`` built)
without it. ``suggest`` turns a dimension into Optuna's own ``trial.suggest_*`` call.
"""

from __future__ import annotations

import math
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: What Optuna's categorical distribution can hold (and JSON can write back).
Scalar = Union[bool, int, float, str, None]
KINDS = ("float", "loguniform", "int", "choice")


class Dimension(BaseModel):
    """A range or a list of choices for one spec field; exactly one kind per dimension."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    float_range: tuple[float, float] | None = Field(
        None, alias="float", description="[min, max]: a real number, uniformly (or log-uniformly with log: true)."
    )
    loguniform: tuple[float, float] | None = Field(
        None, description="[min, max]: a positive real number, uniform on a log scale (learning rates)."
    )
    int_range: tuple[int, int] | None = Field(
        None, alias="int", description="[min, max]: a whole number, both ends included."
    )
    choice: list[Scalar] | None = Field(None, description="A list of values (numbers, text, true/false, null).")
    step: float | None = Field(None, gt=0, description="float/int: only min + k * step (not with log).")
    log: bool = Field(False, description="float/int: sample on a log scale.")

    @model_validator(mode="after")
    def _one_kind(self) -> "Dimension":
        given = [k for k in KINDS if self.bounds_or_choices(k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {', '.join(given) or 'none'})")
        kind = given[0]
        if kind == "choice":
            if not self.choice:
                raise ValueError("choice: give at least one value")
            if len({repr(v) for v in self.choice}) != len(self.choice):
                raise ValueError("choice: the values must differ")
            if self.step is not None or self.log:
                raise ValueError("choice: step and log apply to float and int ranges only")
            return self
        low, high = self.bounds_or_choices(kind)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{kind}: min and max must be finite numbers")
        if not low < high:
            raise ValueError(f"{kind}: min {low:g} must be below max {high:g}")
        if (kind == "loguniform" or self.log) and low <= 0:
            raise ValueError(f"{kind}: a log scale needs min > 0 (got {low:g})")
        if self.step is not None:
            if kind == "loguniform" or self.log:
                raise ValueError("step: not with a log scale (Optuna samples either on a grid or on a log scale)")
            if kind == "int" and self.step != int(self.step):
                raise ValueError(f"step: an int range needs a whole step (got {self.step:g})")
            count = (high - low) / self.step
            if abs(count - round(count)) > 1e-9:
                raise ValueError(f"step: max - min ({high - low:g}) must be a multiple of step {self.step:g}")
        return self

    def bounds_or_choices(self, kind: str) -> Any:
        return {"float": self.float_range, "loguniform": self.loguniform, "int": self.int_range,
                "choice": self.choice}[kind]

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if self.bounds_or_choices(k) is not None)

    def edge_values(self) -> list[Any]:
        """The values to try against the base spec before any trial: both ends, or every choice."""
        if self.kind == "choice":
            return list(self.choice or [])
        low, high = self.bounds_or_choices(self.kind)
        return [int(low), int(high)] if self.kind == "int" else [float(low), float(high)]

    def contains(self, value: Any) -> bool:
        """Whether an enqueued value lies in this dimension."""
        if self.kind == "choice":
            return any(value == c and type(value) is type(c) for c in self.choice or [])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        low, high = self.bounds_or_choices(self.kind)
        if self.kind == "int" and value != int(value):
            return False
        return low <= value <= high

    def grid(self) -> list[Any] | None:
        """The values of a grid search, or None when the dimension is continuous."""
        if self.kind == "choice":
            return list(self.choice or [])
        low, high = self.bounds_or_choices(self.kind)
        if self.kind == "int":
            step = int(self.step or 1)
            return list(range(int(low), int(high) + 1, step))
        if self.kind == "float" and self.step is not None:
            count = round((high - low) / self.step)
            return [round(low + i * self.step, 12) for i in range(count + 1)]
        return None

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask an Optuna trial for this dimension's value (fixed when the trial was enqueued)."""
        kind = self.kind
        if kind == "choice":
            return trial.suggest_categorical(name, list(self.choice or []))
        low, high = self.bounds_or_choices(kind)
        if kind == "int":
            return trial.suggest_int(name, int(low), int(high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, float(low), float(high), step=self.step,
                                   log=self.log or kind == "loguniform")

    def describe(self) -> str:
        kind = self.kind
        if kind == "choice":
            return "one of " + ", ".join(map(repr, self.choice or []))
        low, high = self.bounds_or_choices(kind)
        scale = " (log)" if self.log or kind == "loguniform" else ""
        step = f" step {self.step:g}" if self.step else ""
        return f"{kind} {low:g} .. {high:g}{step}{scale}"
