"""Optuna's side of a sweep: its sampler, pruner and storage, built from the sweep file.

Optuna is imported inside the functions: the sweep plugin is loaded by every ``vitcore`` command.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Mapping

from vitcore.api import SpecError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import optuna

    from vitcore_sweep.space import Dimension
    from vitcore_sweep.sweepfile import PrunerSpec, SamplerSpec

#: Seconds between a controller's heartbeats for the trials it runs, and how long a silent
#: trial is considered alive: after that, any sweep on the study marks it failed.
HEARTBEAT_S = 20
GRACE_S = 120

_SAMPLER_CLASSES = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler",
                    "cmaes": "CmaEsSampler"}
_PRUNER_CLASSES = {"median": "MedianPruner", "percentile": "PercentilePruner", "hyperband": "HyperbandPruner",
                   "successive_halving": "SuccessiveHalvingPruner", "none": "NopPruner"}


def quiet() -> None:
    """Optuna logs every trial at INFO; the sweep prints its own line per trial. The heartbeat and
    plot APIs used here are marked experimental, and Optuna expects heartbeats from its own
    ``optimize`` loop; the sweep records them itself (``runner.Controller.heartbeat``)."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _construct(cls: type, kwargs: Mapping[str, Any], field: str, fixed: tuple[str, ...] = ()) -> Any:
    """``cls(**kwargs)`` with errors naming the sweep field instead of a traceback; ``fixed`` are
    the keywords the sweep sets itself (a sweep file may not)."""
    params = inspect.signature(cls).parameters
    for key in kwargs:
        if key in fixed:
            continue
        if key not in params:
            allowed = ", ".join(p for p in params if p not in fixed and p != "self")
            raise SpecError(f"{field}.{key}: not an option of Optuna's {cls.__name__} (options: {allowed})")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ImportError) as exc:
        raise SpecError(f"{field}: Optuna's {cls.__name__} refused the options: {exc}") from None


def build_sampler(spec: "SamplerSpec", space: Mapping[str, "Dimension"], parallel: bool = False,
                  field: str = "sampler") -> "optuna.samplers.BaseSampler":
    """The sampler; grid gets its grid from the space, TPE lies constantly about running trials
    when several run at once (so parallel trials do not all pick the same point)."""
    import optuna

    quiet()
    cls = getattr(optuna.samplers, _SAMPLER_CLASSES[spec.type])
    kwargs = {**spec.kwargs(), "seed": spec.seed}
    fixed: tuple[str, ...] = ()
    if spec.type == "grid":
        if "search_space" in spec.kwargs():
            raise SpecError(f"{field}.search_space: the grid is the sweep's space; leave it out")
        grid = {}
        for path, dim in space.items():
            values = dim.grid()
            if values is None:
                raise SpecError(f"{field}: grid needs a grid: space.{path} is continuous ({dim.describe()}); "
                                f"give it choice, an int range or a float range with step")
            grid[path] = values
        kwargs["search_space"] = grid
        fixed = ("search_space",)
    if spec.type == "tpe" and parallel and "constant_liar" not in kwargs:
        kwargs["constant_liar"] = True
    if spec.type == "cmaes":
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise SpecError(f"{field}: cmaes needs the cmaes package (pip install cmaes)")
    return _construct(cls, kwargs, field, fixed)


def grid_size(space: Mapping[str, "Dimension"]) -> int:
    size = 1
    for dim in space.values():
        size *= len(dim.grid() or [])
    return size


def pruner_options(spec: "PrunerSpec", epochs: int) -> dict[str, Any]:
    """The pruner as a plain dict (what a trial's sink rebuilds it from). An epoch is one step;
    Hyperband's largest budget defaults to the base spec's epochs."""
    options = {"type": spec.type, **spec.kwargs()}
    if spec.type == "hyperband":
        options.setdefault("max_resource", epochs)
    return options


def build_pruner(options: Mapping[str, Any], field: str = "pruner") -> "optuna.pruners.BasePruner":
    """Optuna's pruner from ``pruner_options``'s dict."""
    import optuna

    quiet()
    kwargs = dict(options)
    cls = getattr(optuna.pruners, _PRUNER_CLASSES[kwargs.pop("type")])
    return _construct(cls, kwargs, field)


def open_storage(url: str, heartbeat: bool = True) -> "optuna.storages.RDBStorage":
    """An RDB storage (SQLite, PostgreSQL, MySQL) for ``url``. SQLite waits for its lock instead of
    failing when parallel trials write at once. With ``heartbeat`` the controller can mark trials
    of a vanished machine failed."""
    import optuna
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    quiet()
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 120}
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise SpecError(f"--storage {url}: not a storage URL Optuna can open ({exc}); "
                        f"give e.g. sqlite:///path/study.db or postgresql://user@host/db") from None
    except OperationalError as exc:
        from vitcore.api import VitcoreError

        raise VitcoreError(f"--storage {url}: cannot connect: {exc.orig}") from None
