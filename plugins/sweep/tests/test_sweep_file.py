"""The sweep file: a bad one is refused before any trial (exit 2, the sweep field named, nothing
written); a good one turns into trial specs that are the base spec with the trial's values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vitcore.api import SpecError, load_spec

GOOD_SPACE = {"train.lr": {"loguniform": [1.0e-3, 1.0e-2]}, "model.depth": {"int": [1, 2]}}


def _sweep(**fields: Any) -> dict[str, Any]:
    return {"name": "bad", "trials": 2, "space": GOOD_SPACE, **fields}


# Acceptance: unknown field path, min > max, unknown sampler, a value the component refuses.
BAD_SWEEPS = {
    "unknown field path": (_sweep(space={"train.lrr": {"loguniform": [1e-3, 1e-2]}}),
                           "space.train.lrr: no such field in the base spec base.json (with its defaults): "
                           "train has no field 'lrr'; did you mean lr"),
    "min above max": (_sweep(space={"model.depth": {"int": [4, 2]}}),
                      "space.model.depth: int: min 4 must be below max 2"),
    "unknown sampler": (_sweep(sampler="bayes"), "sampler.type: Input should be 'tpe', 'random', 'grid' or 'cmaes'"),
    "value the component refuses": (_sweep(space={"model.num_heads": {"choice": [2, 3]}}),
                                    "space.model.num_heads: 3 is refused by the base spec: model: "
                                    "Value error, embed_dim: 32 is not divisible by num_heads 3"),
}
#: What else is checked before a sweep starts (in-process: the same function the commands call).
MORE_BAD_SWEEPS = {
    "range end the spec refuses": (_sweep(space={"model.depth": {"int": [0, 2]}}),
                                   "space.model.depth: 0 is refused by the base spec: model.depth: "
                                   "Input should be greater than or equal to 1"),
    "a path past a list's end": (_sweep(space={"augmentations.5.p": {"float": [0, 1]}}),
                                 "space.augmentations.5.p: no such field in the base spec base.json "
                                 "(with its defaults): augmentations is a list of 0 item(s)"),
    "an object, not a field": (_sweep(space={"train": {"choice": [1, 2]}}),
                               "space.train: is an object in the base spec; address one field inside it"),
    "a field the sweep owns": (_sweep(space={"train.best_metric": {"choice": ["val_loss"]}}),
                               "space: train.best_metric: the sweep sets train.best_metric for every trial"),
    "an option the sampler lacks": (_sweep(sampler={"type": "tpe", "n_startup": 3}),
                                    "sampler.n_startup: not an option of Optuna's TPESampler"),
    "an option the pruner refuses": (_sweep(pruner={"type": "median", "n_startup_trials": -1}),
                                     "pruner: Optuna's MedianPruner refused the options"),
    "grid over a continuous range": (_sweep(sampler="grid"),
                                     "sampler: grid needs a grid: space.train.lr is continuous"),
    "enqueued value out of range": (_sweep(enqueue=[{"train.lr": 0.5}]),
                                    "enqueue[0]: train.lr: 0.5 is outside its range"),
    "a direction against the metric": (_sweep(metric="val_loss", direction="maximize"),
                                       "direction: val_loss is lower when better; use direction: minimize"),
    "no trial count": ({"space": GOOD_SPACE}, "trials: give the number of trials"),
    "a missing base spec": (_sweep(base="nope.json"), "base: nope.json not found"),
}


@pytest.mark.parametrize("case", list(BAD_SWEEPS))
def test_a_bad_sweep_file_exits_2_naming_the_field_and_writes_nothing(case, tmp_path, make_sweep, vitcore_cli):
    sweep, message = BAD_SWEEPS[case]
    path = make_sweep(tmp_path, sweep)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = vitcore_cli("sweep", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{path}: {message}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no sweep folder, no study


@pytest.mark.parametrize("case", list(MORE_BAD_SWEEPS))
def test_every_rule_is_checked_before_any_trial(case, tmp_path, make_sweep):
    from vitcore_sweep.prepare import prepare

    sweep, message = MORE_BAD_SWEEPS[case]
    path = make_sweep(tmp_path, sweep)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(SpecError) as caught:
        prepare(path)
    assert f"{path}: {message}" in str(caught.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_validate_describes_a_good_sweep(tmp_path, make_sweep, vitcore_cli):
    path = make_sweep(tmp_path, {"name": "good", "trials": 4, "space": GOOD_SPACE})
    done = vitcore_cli("sweep", "validate", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (f"{path}: valid: sweep good over 2 parameter(s), 4 trials, maximize val_acc1, sampler tpe, "
            f"pruner median; trials go to {tmp_path / 'runs' / 'good'}") in done.stdout
    assert "train.lr: loguniform 0.001 .. 0.01 (log)" in done.stdout
    assert not (tmp_path / "runs").exists()


def test_a_trial_spec_is_the_base_spec_with_the_trials_values(tmp_path, make_sweep, base_spec):
    """Also through a list the base spec leaves to its default: augmentations.1.p is written out."""
    from vitcore_sweep.prepare import prepare, trial_overrides

    base = base_spec()
    del base["augmentations"]  # the defaults: random_resized_crop, horizontal_flip
    space = {"train.lr": {"loguniform": [1e-3, 1e-2]}, "augmentations.1.p": {"float": [0.0, 1.0]}}
    sweep = prepare(make_sweep(tmp_path, {"name": "s", "trials": 2, "space": space}, base=base))
    params = {"train.lr": 0.002, "augmentations.1.p": 0.25}
    overrides = trial_overrides(sweep, 7, params, "sqlite:///study.db")
    spec = load_spec(sweep.base_path, overrides).to_dict()
    assert spec["train"]["lr"] == 0.002 and spec["train"]["best_metric"] == "val_acc1"
    assert [a["type"] for a in spec["augmentations"]] == ["random_resized_crop", "horizontal_flip"]
    assert spec["augmentations"][1]["p"] == 0.25
    assert spec["name"] == "trial-7" and Path(spec["output_dir"]) == tmp_path / "runs" / "s"
    assert spec["meta"] == {"sweep": {"name": "s", "trial": 7, "params": params}}
    sink = next(s for s in spec["sinks"] if s["type"] == "optuna_trial")
    assert sink == {"type": "optuna_trial", "storage": "sqlite:///study.db", "study": "s", "trial": 7,
                    "metric": "val_acc1", "pruner": {"type": "median"}}
    # Everything else is the base spec's, defaults included.
    untouched = load_spec(sweep.base_path).to_dict()
    for field in ("data", "model", "visualizers", "exporters"):
        assert spec[field] == untouched[field]


def test_durations_and_grids():
    from vitcore_sweep.space import Dimension
    from vitcore_sweep.sweepfile import parse_duration

    assert [parse_duration(v) for v in (90, "90", "90s", "1.5m", "2h", "1d")] == [90, 90, 90, 90, 7200, 86400]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    assert Dimension.model_validate({"int": [2, 8], "step": 2}).grid() == [2, 4, 6, 8]
    assert Dimension.model_validate({"float": [0, 1], "step": 0.25}).grid() == [0, 0.25, 0.5, 0.75, 1.0]
    assert Dimension.model_validate({"loguniform": [1e-4, 1e-2]}).grid() is None
    with pytest.raises(ValueError, match="multiple of step"):
        Dimension.model_validate({"float": [0, 1], "step": 0.3})


def test_a_sweep_error_is_a_spec_error():
    from vitcore_sweep.sweepfile import parse_sweep

    with pytest.raises(SpecError, match=r"^s.yaml: space.train.lr: give exactly one of float, loguniform, int, "
                                        r"choice \(got float, choice\)"):
        parse_sweep({"base": "b.json", "trials": 1, "space": {"train.lr": {"float": [0, 1], "choice": [1]}}},
                    "s.yaml")
