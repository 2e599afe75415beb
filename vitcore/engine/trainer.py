"""One training run, start to end: set-up, the fit loop, the finish.

::

    parts    = build_run(...)             engine/setup.py    data, model, loaders, optimiser,
                                                             schedule, device input; run folder
    progress = RunProgress.open(...)      engine/progress.py counters + summary, one writer
    events   = RunEvents.open(...)        engine/events.py   sinks and visualizers, built once
    outcome  = FitLoop(...).run()         engine/loop.py     epochs: train, evaluate, checkpoint,
                                                             epoch_end moment (may StopRun)
    finish_run(...)                       engine/finish.py   best weights, final pictures, exports
    progress.write(); events.run_end()                       status final, run_end moment
"""

from __future__ import annotations

import errno
import signal
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from vitcore.components import SinkContext
from vitcore.engine import distributed as dist
from vitcore.engine.device import resolve_precision, select_device
from vitcore.engine.events import RunEvents
from vitcore.engine.finish import finish_run
from vitcore.engine.loop import FitLoop
from vitcore.engine.progress import RunProgress
from vitcore.engine.setup import RunParts, build_run
from vitcore.errors import TrainingDiverged, VitcoreError
from vitcore.run_lock import RunLock, remove_stale_temp_files
from vitcore.runs import environment, now_iso, write_json_atomic
from vitcore.spec import ResolvedSpec


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


class Trainer:
    """One training run (or its resumption) of a resolved spec."""

    def __init__(self, resolved: ResolvedSpec, run_dir: Path | None = None,
                 changes: dict[str, list] | None = None) -> None:
        self.resolved = resolved
        self.resume_dir = run_dir
        self.changes = dict(changes or {})  # fields a resume changed: {field: [old, new]}
        self.info = dist.from_environment()
        self.device = select_device(resolved.train.device, self.info.local_rank)
        self.precision = resolve_precision(resolved.train.precision, self.device)

    def run(self) -> RunResult:
        dist.init_process_group(self.info, self.device)
        try:
            with _sigterm_interrupts():
                return self._run()
        finally:
            dist.destroy_process_group()

    def _run(self) -> RunResult:
        locks: list[RunLock] = []
        try:
            if self.resume_dir is not None and self.info.is_main:
                # Before any work: a second process in the folder is refused with the holder's name.
                locks.append(RunLock(self.resume_dir).acquire("resume"))
                remove_stale_temp_files(self.resume_dir)
            parts = build_run(self.resolved, self.info, self.device, self.precision, self.resume_dir,
                              claim=lambda path: locks.append(RunLock(path).acquire()), changes=self.changes)
            return self._train(parts)
        finally:
            for lock in locks:
                lock.release()

    def _train(self, parts: RunParts) -> RunResult:
        main = parts.info.is_main
        progress = _start_progress(parts)
        if main:
            print(start_banner(parts, progress), flush=True)
        events = _open_events(parts, progress) if main else RunEvents.silent()
        try:
            outcome = FitLoop(parts, progress, events).run()
            if main and outcome.finish:
                finish_run(parts, progress, events)
            progress.end(outcome.status)
        except TrainingDiverged:
            progress.end("diverged")
            raise
        except KeyboardInterrupt:
            progress.end("interrupted")
            raise RunInterrupted(f"Interrupted. Continue with `vitcore resume {parts.run_dir}`.") from None
        except OSError as exc:  # disk full, permissions, a file gone: say which and what to do
            progress.end("failed", f"{type(exc).__name__}: {exc}")
            raise storage_error(exc, parts.run_dir) from exc
        except BaseException as exc:
            progress.end("failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            summary = progress.summary()
            if main:
                try:
                    summary = progress.write()
                except OSError as exc:  # the disk is still full: the earlier summary.json stays whole
                    warnings.warn(f"could not update {parts.run_dir / 'summary.json'}: {exc}", stacklevel=2)
                events.run_end(progress.status, summary)
            events.close()
        if main and progress.status in ("completed", "early_stopped"):
            from vitcore.plugins import get_host

            get_host().call("run_finished", run_dir=parts.run_dir, summary=summary)
        dist.patient_barrier(parts.info)  # rank 0 may have spent long on pictures and exports
        return RunResult(parts.run_dir, summary)


class RunInterrupted(VitcoreError, KeyboardInterrupt):
    """Ctrl-C or SIGTERM: the run is marked interrupted; the message says how to continue it."""

    exit_code = 130


def storage_error(exc: OSError, run_dir: Path) -> VitcoreError:
    """A clear message for a file operation that failed mid-run (the run can be resumed)."""
    where = exc.filename or run_dir
    if exc.errno == errno.ENOSPC:
        return VitcoreError(f"no space left on the device while writing {where}. Free some space, then "
                            f"`vitcore resume {run_dir}` continues from the last checkpoint.")
    return VitcoreError(f"{where}: {exc.strerror or exc} (during the run in {run_dir}); fix it, then "
                        f"`vitcore resume {run_dir}`.")


def _start_progress(parts: RunParts) -> RunProgress:
    """The run's progress, restored from last.pt on resume; rank 0 writes the run's first files."""
    facts = _facts(parts)
    progress = RunProgress.open(parts.run_dir, parts.train.best_metric, facts, parts.resumed)
    if parts.checkpoint is not None:
        progress.restore(parts.checkpoint)
    if parts.resumed:
        earlier = list(progress.earlier.get("resumed", []))
        entry: dict[str, Any] = {"at": now_iso(), "from_epoch": progress.epoch}
        if parts.changes:
            entry["changed"] = parts.changes
        progress.facts["resumed"] = earlier + [entry]
    if parts.info.is_main:
        if not parts.resumed or parts.changes:  # spec.json: what the run trains with from now on
            write_json_atomic(parts.run_dir / "spec.json", parts.resolved.to_dict())
            flops = _write_model_summary(parts)
            if flops is not None:
                progress.facts["flops_per_image"] = flops
        elif "flops_per_image" in progress.earlier:
            progress.facts["flops_per_image"] = progress.earlier["flops_per_image"]
        write_json_atomic(parts.run_dir / "env.json", environment(str(parts.device), _plugin_infos()))
        progress.write()
    return progress


def start_banner(parts: RunParts, progress: RunProgress) -> str:
    """What the run is about to do, before the first step: where, on what, how."""
    cfg = parts.train
    verb = f"Resuming {parts.run_dir} at epoch {progress.epoch + 1}" if parts.resumed else f"Run {parts.run_dir}"
    test = parts.splits.test
    sizes = f"train {len(parts.splits.train)}, val {len(parts.splits.val)}" + (
        f", test {len(test)}" if test is not None else "")
    classes = ", ".join(parts.classes[:8]) + (f", ... ({len(parts.classes)})" if len(parts.classes) > 8 else "")
    return "\n".join([
        verb,
        f"  data      {sizes} images; {len(parts.classes)} classes: {classes}",
        f"  model     {parts.resolved.model.type}, {progress.facts['parameters']:,} parameters, "
        f"{parts.preprocessing.image_size} px",
        f"  device    {parts.device} ({parts.info.world_size} process(es)), precision {parts.precision.name}"
        + (", compiled" if cfg.compile else ""),
        f"  schedule  {cfg.epochs} epochs x {parts.steps_per_epoch} steps, batch {cfg.batch_size}"
        + (f" x {cfg.grad_accum_steps} accumulated" if cfg.grad_accum_steps > 1 else ""),
    ])


def _facts(parts: RunParts) -> dict[str, Any]:
    spec = parts.resolved.spec
    facts: dict[str, Any] = {
        "name": spec.name,
        "version": parts.run_dir.name,
        "run_dir": str(parts.run_dir),
        "classes": parts.classes,
        "preprocessing": parts.preprocessing.to_dict(),
        "parameters": sum(p.numel() for p in parts.raw_model.parameters()),
        "device": str(parts.device),
        "precision": parts.precision.name,
        "world_size": parts.info.world_size,
        "data": parts.splits.info,
    }
    if spec.meta:
        facts["meta"] = spec.meta
    if parts.lineage is not None:
        facts["lineage"] = parts.lineage
    if parts.auto_batch is not None:
        facts["auto_batch_size"] = parts.auto_batch
    return facts


def _open_events(parts: RunParts, progress: RunProgress) -> RunEvents:
    ctx = SinkContext(run_dir=parts.run_dir, spec=parts.resolved.to_dict(), resumed=parts.resumed,
                      start_step=progress.step)
    events = RunEvents.open(parts.resolved.sinks, parts.resolved.visualizers, ctx)
    if not parts.resumed and parts.samples:
        events.log_graph(parts.raw_model, parts.normalize(torch.stack([s[0] for s in parts.samples[:2]])))
    return events


def _write_model_summary(parts: RunParts) -> int | None:
    """The architecture table (shapes, parameters, FLOPs) saved with the run; its FLOPs per image."""
    from vitcore.model_summary import format_table, summarize

    try:
        table = summarize(parts.raw_model, parts.preprocessing.image_size)
    except Exception as exc:  # noqa: BLE001 - a model the counter cannot trace still trains
        warnings.warn(f"model summary skipped: {type(exc).__name__}: {exc}", stacklevel=2)
        return None
    write_json_atomic(parts.run_dir / "model_summary.json", table)
    (parts.run_dir / "model_summary.txt").write_text(format_table(table) + "\n", encoding="utf-8")
    return table["flops_per_image"]


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a scheduler or torchrun stopping us) ends the run like Ctrl-C: status interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _plugin_infos() -> list[dict[str, Any]]:
    from vitcore.plugins import get_host

    return [i.to_dict() for i in get_host().plugins(include_builtin=False)]


def train(resolved: ResolvedSpec, run_dir: Path | None = None, changes: dict[str, list] | None = None) -> RunResult:
    """Train a resolved spec; with ``run_dir``, resume that run from its last checkpoint
    (``changes``: the fields ``vitcore resume --set`` changed, ``{field: [old, new]}``)."""
    return Trainer(resolved, run_dir, changes).run()
