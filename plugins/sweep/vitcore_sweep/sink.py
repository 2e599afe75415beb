"""The ``optuna_trial`` metric sink: a trial's run reports each epoch to its Optuna study and is
pruned there.

The sweep adds it to every trial's spec. After each epoch it stores the metric as the trial's
intermediate value (step = epoch) and asks the sweep's pruner; a hopeless trial is ended by
raising ``StopRun("pruned")``: the engine keeps that epoch's checkpoint and record and writes
``status: pruned`` into summary.json. The final state of the trial (complete, pruned, failed) is
told by the sweep controller from summary.json, never by the sink, so a crash of the run cannot
leave a half-told trial.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Literal

from pydantic import Field

from vitcore.api import MetricSink, Options, SinkContext, StopRun


class OptunaTrialOptions(Options):
    storage: str = Field(description="The study's storage URL (sqlite:///..., postgresql://...).")
    study: str = Field(description="The study's name (the sweep's).")
    trial: int = Field(ge=0, description="The trial's number in the study.")
    metric: Literal["val_acc1", "val_acc5", "val_loss"] = Field("val_acc1", description="Reported each epoch.")
    pruner: dict[str, Any] = Field(default_factory=lambda: {"type": "median"},
                                   description="The sweep's pruner: {type, ...Optuna's options}.")


class OptunaTrialSink(MetricSink):
    """Reports each epoch's metric to an Optuna trial and stops the run when the pruner says so."""

    name = "optuna_trial"
    Options = OptunaTrialOptions
    options: OptunaTrialOptions

    def open(self, ctx: SinkContext) -> None:
        import optuna

        from vitcore_sweep.optuna_setup import build_pruner, open_storage

        o = self.options
        self._active = False
        self._epochs = int(ctx.spec.get("train", {}).get("epochs", 0))
        self._storage = open_storage(o.storage, heartbeat=False)
        try:
            study_id = self._storage.get_study_id_from_name(o.study)
            self._trial_id = self._storage.get_trial_id_from_study_id_trial_number(study_id, o.trial)
        except KeyError:
            self._warn(f"study {o.study!r} has no trial {o.trial} in {o.storage}; this run reports nothing")
            return
        if self._storage.get_trial(self._trial_id).state != optuna.trial.TrialState.RUNNING:
            # A trial's spec run again by hand: train, but leave the finished trial as it is.
            self._warn(f"trial {o.trial} of study {o.study!r} is already finished; this run reports nothing")
            return
        self._pruner = build_pruner(o.pruner)
        self._study = optuna.load_study(study_name=o.study, storage=self._storage, pruner=self._pruner)
        self._active = True

    def log(self, record: dict[str, Any]) -> None:
        if not getattr(self, "_active", False) or record.get("event") != "epoch":
            return
        metric = self.options.metric
        value, epoch = record.get(metric), int(record["epoch"])
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        self._storage.set_trial_intermediate_value(self._trial_id, epoch, float(value))
        if epoch >= self._epochs:  # the last epoch: the trial is complete, pruning saves nothing
            return
        if self._pruner.prune(self._study, self._storage.get_trial(self._trial_id)):
            raise StopRun(
                status="pruned",
                reason=f"{metric} {value:.4f} after epoch {epoch}: the {self.options.pruner['type']} pruner "
                f"judged the trial worse than the study's others at that epoch",
            )

    @staticmethod
    def _warn(message: str) -> None:
        print(f"optuna_trial: {message}", file=sys.stderr)
