"""The optuna_trial sink: keeps the metric-sink contract, reports each epoch to its trial, and
stops a hopeless trial by raising StopRun("pruned") — never on the last epoch, never for a trial
that is already finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vitcore.api import SinkContext, StopRun
from vitcore.testing import check_metric_sink, metric_records
from vitcore_sweep.sink import OptunaTrialSink


def _study(tmp_path: Path, name: str = "s", completed: list[dict[int, float]] = ()) -> tuple[Any, str]:
    """A study in SQLite with ``completed`` trials (their intermediate values), and its URL."""
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    for values in completed:
        trial = study.ask()
        for step, value in values.items():
            trial.report(value, step)
        study.tell(trial, max(values.values()))
    return study, url


def _sink(url: str, trial: int, tmp_path: Path, epochs: int = 3, pruner: dict | None = None) -> OptunaTrialSink:
    options = {"storage": url, "study": "s", "trial": trial, "metric": "val_acc1"}
    if pruner is not None:
        options["pruner"] = pruner
    sink = OptunaTrialSink(OptunaTrialSink.Options(**options))
    sink.open(SinkContext(run_dir=tmp_path, spec={"train": {"epochs": epochs}}))
    return sink


def _epoch(epoch: int, acc: float) -> dict[str, Any]:
    return {"event": "epoch", "epoch": epoch, "step": 10 * epoch, "val_acc1": acc, "val_loss": 1.0}


def test_the_sink_keeps_the_contract_and_reports_every_epoch(tmp_path):
    study, url = _study(tmp_path)
    trial = study.ask()
    check_metric_sink(OptunaTrialSink, {"storage": url, "study": "s", "trial": trial.number}, tmp_path)
    epochs = [r for r in metric_records(["a", "b", "c"]) if r["event"] == "epoch"]
    reported = study.trials[trial.number].intermediate_values
    assert reported == {r["epoch"]: r["val_acc1"] for r in epochs}


def test_a_trial_worse_than_the_median_is_pruned_but_not_on_its_last_epoch(tmp_path):
    study, url = _study(tmp_path, completed=[{1: 0.8, 2: 0.9, 3: 0.95}, {1: 0.7, 2: 0.8, 3: 0.85}])
    good, bad = study.ask(), study.ask()
    median = {"type": "median", "n_startup_trials": 1}
    _sink(url, good.number, tmp_path, pruner=median).log(_epoch(1, 0.9))  # above the median: goes on
    sink = _sink(url, bad.number, tmp_path, pruner=median)
    with pytest.raises(StopRun) as stopped:
        sink.log(_epoch(1, 0.5))
    assert stopped.value.status == "pruned" and not stopped.value.finish
    assert stopped.value.reason.startswith("val_acc1 0.5000 after epoch 1: the median pruner")
    assert study.trials[bad.number].intermediate_values == {1: 0.5}
    last = _sink(url, bad.number, tmp_path, epochs=1)
    last.log(_epoch(1, 0.5))  # the run's last epoch: complete, pruning would save nothing
    _sink(url, bad.number, tmp_path, pruner={"type": "none"}).log(_epoch(1, 0.5))


def test_a_finished_trial_is_left_as_it_is(tmp_path, capsys):
    study, url = _study(tmp_path, completed=[{1: 0.8}])
    sink = _sink(url, 0, tmp_path)
    assert "trial 0 of study 's' is already finished; this run reports nothing" in capsys.readouterr().err
    sink.log(_epoch(1, 0.1))
    assert study.trials[0].intermediate_values == {1: 0.8}
    _sink(url, 5, tmp_path)
    assert "study 's' has no trial 5" in capsys.readouterr().err
