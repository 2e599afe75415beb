"""The run's progress and summary: one typed object, written to summary.json in one place.

``RunProgress`` holds what survives an epoch (saved in last.pt and restored on resume) and the
facts summary.json reports. Every part of the engine changes it through its methods; only
``write`` turns it into summary.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitcore.runs import now_iso, read_json, write_json_atomic

HIGHER_IS_BETTER = {"val_acc1": True, "val_acc5": True, "val_loss": False}

#: The counters last.pt stores (format 1 keys, so older checkpoints resume).
CHECKPOINT_FIELDS = ("epoch", "step", "best_value", "best_epoch", "stale_epochs", "images_per_sec")


@dataclass
class RunProgress:
    """Counters, best metric and the summary of one run (or its resumption)."""

    run_dir: Path
    best_metric: str
    #: Summary facts fixed at set-up (name, classes, device, ...); see ``Trainer``.
    facts: dict[str, Any]
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_value: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    images_per_sec: list[float] = field(default_factory=list)
    status: str = "running"
    error: str | None = None
    stopped: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    #: Seconds each end-of-run step took (pictures, exports, ...).
    timings: dict[str, float] = field(default_factory=dict)
    #: The test split's evaluation with the best weights (``vitcore.evaluation.summary_view``), or
    #: why it could not be made; both None without a test split.
    test: dict[str, Any] | None = None
    test_error: str | None = None
    #: What an earlier attempt of this run left in summary.json (resume keeps its history).
    earlier: dict[str, Any] = field(default_factory=dict)
    started_clock: float = field(default_factory=time.perf_counter)

    # -- resume -------------------------------------------------------------------------------

    @classmethod
    def open(cls, run_dir: Path, best_metric: str, facts: dict[str, Any], resumed: bool) -> "RunProgress":
        """A new progress; a resumed run starts from its earlier summary.json, if any."""
        earlier = {}
        if resumed and (run_dir / "summary.json").is_file():
            try:
                earlier = read_json(run_dir / "summary.json")
            except Exception:  # noqa: BLE001 - a torn summary is rewritten from the checkpoint
                earlier = {}
            for stale in ("finished", "error", "stopped", "plots", "exports", "end_of_run_s", "test", "test_error"):
                earlier.pop(stale, None)
        return cls(run_dir=run_dir, best_metric=best_metric, facts=dict(facts), earlier=earlier)

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Counters from a last.pt."""
        for name in CHECKPOINT_FIELDS:
            if name in checkpoint:
                value = checkpoint[name]
                setattr(self, name, list(value) if name == "images_per_sec" else value)

    def checkpoint_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CHECKPOINT_FIELDS}

    # -- during the run -------------------------------------------------------------------------

    def record_epoch(self, value: float, images_per_sec: float) -> bool:
        """Count a finished epoch and its ``best_metric`` value; True when it is the best so far."""
        self.epoch += 1
        self.images_per_sec.append(images_per_sec)
        higher = HIGHER_IS_BETTER[self.best_metric]
        best = self.best_value
        if best is None or (value > best if higher else value < best):
            self.best_value, self.best_epoch, self.stale_epochs = value, self.epoch, 0
            return True
        self.stale_epochs += 1
        return False

    def record_test(self, evaluation: dict[str, Any] | None, error: str | None = None) -> None:
        """Keep the end-of-run test evaluation (or the reason there is none) for summary.json."""
        self.test, self.test_error = evaluation, error

    def end(self, status: str, error: str | None = None) -> None:
        self.status = status
        if error is not None:
            self.error = error

    @property
    def wall_time_s(self) -> float:
        earlier = float(self.earlier.get("wall_time_s") or 0.0)
        return round(earlier + time.perf_counter() - self.started_clock, 3)

    # -- summary.json -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What summary.json holds now: the earlier attempt's keys, then the facts and progress."""
        out = dict(self.earlier)
        out.update(self.facts)
        out.setdefault("started", now_iso())
        ips = self.images_per_sec
        out.update(
            status=self.status,
            best_metric=self.best_metric,
            epochs_completed=self.epoch,
            steps=self.step,
            best_epoch=self.best_epoch,
            best_value=self.best_value,
            images_per_sec=sum(ips) / len(ips) if ips else None,
            wall_time_s=self.wall_time_s,
        )
        if self.error is not None:
            out["error"] = self.error
        if self.stopped is not None:
            out["stopped"] = self.stopped
        if self.status != "running":
            out["finished"] = now_iso()
            out["plots"], out["exports"] = self.plots, self.exports
            if self.test is not None:
                out["test"] = self.test
            if self.test_error is not None:
                out["test_error"] = self.test_error
            if self.timings:
                out["end_of_run_s"] = {k: round(v, 3) for k, v in self.timings.items()}
        return out

    def write(self) -> dict[str, Any]:
        """Write summary.json atomically and return what was written."""
        summary = self.summary()
        self.earlier.setdefault("started", summary["started"])
        write_json_atomic(self.run_dir / "summary.json", summary)
        return summary
