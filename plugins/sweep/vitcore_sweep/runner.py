"""The sweep controller: asks Optuna for trials, runs each as its own ``vitcore run`` process,
tells Optuna how each ended, and carries on after a kill.

Why processes: a trial that crashes, leaks memory or is killed takes nothing else with it, J of
them run at once on their own cores or GPU, and each is exactly the run a user would get from
``vitcore run BASE --set ...``. The controller owns the trial's final state: it reads the run's
summary.json when the process ends (completed -> COMPLETE with the best value, pruned or
diverged -> PRUNED, anything else -> FAIL). Trials count towards ``trials`` when COMPLETE or
PRUNED; the count is taken from the study, so N machines on one storage share it.

Kill safety: each running trial records its controller (host, pid, start time) in the study. A
restarted sweep finds RUNNING trials whose controller on this host is gone and takes them over:
a run that finished meanwhile is told from its summary.json, one that was interrupted is resumed
with ``vitcore resume`` from its last checkpoint, one that never started is started. Trials of a
vanished other machine are marked failed once their heartbeat is older than the grace period.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from vitcore.api import VitcoreError, locked, read_json, write_json_atomic
from vitcore_sweep import processes
from vitcore_sweep.prepare import Sweep, trial_overrides

#: Run statuses that are final: the trial is told from them without running it again.
FINAL = ("completed", "early_stopped", "pruned", "diverged")
#: Real failures (a crash, a refused spec) in a row after which no new trial is started.
MAX_FAILURES_IN_A_ROW = 3
OWNER, CHILD, RUN_ROOT = "vitcore_owner", "vitcore_child", "vitcore_run_root"


@dataclass
class Job:
    number: int
    trial_id: int
    params: dict[str, Any]
    #: An interrupted run to continue with ``vitcore resume`` (None: start it).
    resume_dir: Path | None = None


@dataclass
class Outcome:
    """What one invocation of the sweep did."""

    finished: int = 0
    target: int | None = None
    interrupted: bool = False
    stopped_reason: str | None = None
    told: list[int] = field(default_factory=list)


def latest_run(run_root: Path) -> Path | None:
    """The newest ``v<N>`` holding a spec.json under a trial's folder."""
    if not run_root.is_dir():
        return None
    versions = sorted((int(p.name[1:]), p) for p in run_root.iterdir()
                      if p.is_dir() and p.name[:1] == "v" and p.name[1:].isdigit())
    for _, path in reversed(versions):
        if (path / "spec.json").is_file():
            return path
    return None


def run_summary(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None or not (run_dir / "summary.json").is_file():
        return {}
    try:
        return read_json(run_dir / "summary.json")
    except VitcoreError:
        return {}


class Controller:
    """One ``vitcore sweep`` invocation on one machine: J worker threads, each running one trial
    process at a time, plus a heartbeat thread."""

    def __init__(self, sweep: Sweep, jobs: int, storage_url: str, echo: Callable[[str], None]) -> None:
        self.sweep, self.jobs, self.storage_url, self.echo = sweep, jobs, storage_url, echo
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.interrupted = False
        self.inflight: dict[int, int] = {}  # trial number -> trial id (heartbeats)
        self.procs: dict[int, subprocess.Popen] = {}
        self.orphans: list[Job] = []
        self.failures_in_a_row = 0
        self.outcome = Outcome(target=sweep.trials)
        self.started = time.monotonic()

    # -- the study ---------------------------------------------------------------------------

    def open_study(self) -> None:
        import optuna

        from vitcore_sweep.optuna_setup import build_pruner, build_sampler, open_storage, pruner_options

        sweep = self.sweep
        self.storage = open_storage(self.storage_url, heartbeat=True)
        self.study = optuna.create_study(
            study_name=sweep.name, storage=self.storage, direction=sweep.direction, load_if_exists=True,
            sampler=build_sampler(self._sampler_spec(), sweep.file.space, parallel=self.jobs > 1),
            pruner=build_pruner(pruner_options(sweep.file.pruner, sweep.epochs)),
        )
        self.study_id = self.storage.get_study_id_from_name(sweep.name)
        recorded = self.study.user_attrs.get("vitcore_sweep")
        if recorded is None:
            self.study.set_user_attr("vitcore_sweep", {"fingerprint": sweep.fingerprint(),
                                                       "definition": sweep.definition()})
            for params in sweep.file.enqueue:
                self.study.enqueue_trial(params, skip_if_exists=True)
        elif recorded["fingerprint"] != sweep.fingerprint():
            raise VitcoreError(
                f"{sweep.path}: study {sweep.name!r} in {self.storage_url} was started from a different sweep "
                f"({_first_difference(recorded['definition'], sweep.definition())}); give the sweep another "
                f"name, or restore the file and base spec it was started with"
            )

    def _sampler_spec(self) -> Any:
        """The sampler's seed moves on with the trials already in the study: a restarted sweep (or
        a second machine) must not replay the first one's sequence of parameters. A fresh sweep
        on one machine keeps the seed as written, so it is repeatable."""
        spec = self.sweep.file.sampler
        if spec.seed is None:
            return spec
        try:
            existing = len(self.storage.get_all_trials(self.storage.get_study_id_from_name(self.sweep.name),
                                                       deepcopy=False))
        except KeyError:  # no study yet
            existing = 0
        seed = spec.seed + existing
        if self.storage_url != self.sweep.storage_url:  # a shared study: machines may start together
            seed += int.from_bytes(hashlib.sha256(str(processes.identity()).encode()).digest()[:4], "big")
        return spec.model_copy(update={"seed": seed % 2**32})

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _set_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.storage.set_trial_user_attr(trial_id, key, value)

    # -- taking over after a kill ---------------------------------------------------------------

    def recover(self) -> None:
        """Take over RUNNING trials whose controller on this machine is gone."""
        import optuna

        from vitcore_sweep.optuna_setup import GRACE_S

        me = processes.hostname()
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = trial.user_attrs.get(OWNER)
            if not owner:
                # Killed between asking and recording its owner: no heartbeat either, so only
                # its age tells it is abandoned.
                started = trial.datetime_start
                if started is not None and (datetime.now() - started).total_seconds() > GRACE_S:
                    self.record(trial.number, optuna.trial.TrialState.FAIL)
                continue
            if owner.get("host") != me or processes.alive(owner["pid"], owner.get("start")):
                continue
            child = trial.user_attrs.get(CHILD)
            if child and processes.alive(child["pid"], child.get("start")):
                processes.stop_process(child["pid"], child.get("start"))
            trial_id = self._trial_id(trial.number)
            self._set_attr(trial_id, OWNER, processes.identity())
            self.storage.record_heartbeat(trial_id)
            run_root = Path(trial.user_attrs.get(RUN_ROOT, self.sweep.sweep_dir / f"trial-{trial.number}"))
            run_dir = latest_run(run_root)
            job = Job(trial.number, trial_id, dict(trial.params))
            status = run_summary(run_dir).get("status")
            if status in FINAL:
                self.echo(f"trial {trial.number} had ended ({status}) while the sweep was down: recorded")
                self._tell(job, run_dir, None)
                continue
            if run_dir is not None:
                job.resume_dir = run_dir
                self.echo(f"trial {trial.number} was interrupted: resuming {run_dir}")
            else:
                self.echo(f"trial {trial.number} never started its run: starting it")
            with self.lock:
                self.inflight[trial.number] = trial_id
            self.orphans.append(job)

    # -- choosing the next trial ------------------------------------------------------------------

    def next_job(self) -> Job | str | None:
        """A job, ``"wait"`` (others' trials may still fail and need replacing) or None (done)."""
        import optuna
        from optuna.trial import TrialState

        # The thread lock orders this machine's workers; the file lock other sweep processes on
        # this machine sharing the study, so together they never start more trials than asked.
        with self.lock, locked(self.sweep.sweep_dir / "study.ask"):
            if self.stop.is_set():
                return None
            if self.orphans:
                return self.orphans.pop(0)
            optuna.storages.fail_stale_trials(self.study)
            trials = self.study.get_trials(deepcopy=False)
            done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            self.outcome.finished = done
            target = self.sweep.trials
            if target is not None and done >= target:
                return None
            budget = self.sweep.time_budget_s
            if budget is not None and time.monotonic() - self.started > budget:
                self.outcome.stopped_reason = f"the time budget ({budget:g} s) is spent"
                return None
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                return None
            if target is not None and done + running >= target:
                return "wait"
            trial = self.study.ask()
            trial_id = self._trial_id(trial.number)
            self.storage.record_heartbeat(trial_id)  # first: from now on a vanished owner is noticed
            self.inflight[trial.number] = trial_id
            trial.set_user_attr(OWNER, processes.identity())
            trial.set_user_attr(RUN_ROOT, str(self.sweep.sweep_dir / f"trial-{trial.number}"))
            params = {path: dim.suggest(trial, path) for path, dim in self.sweep.file.space.items()}
            return Job(trial.number, trial_id, params)

    # -- one trial ----------------------------------------------------------------------------

    def command(self, job: Job) -> list[str]:
        python = [sys.executable, "-m", "vitcore"]
        if job.resume_dir is not None:
            return [*python, "resume", str(job.resume_dir)]
        sets = trial_overrides(self.sweep, job.number, job.params, self.storage_url)
        return [*python, "run", str(self.sweep.base_path), *(a for s in sets for a in ("--set", s))]

    def run_job(self, job: Job, slot: processes.Slot) -> None:
        if self.stop.is_set():  # interrupted meanwhile: left RUNNING, the next start runs it
            return
        run_root = self.sweep.sweep_dir / f"trial-{job.number}"
        run_root.mkdir(parents=True, exist_ok=True)
        command = self.command(job)
        launcher = [sys.executable, "-m", "vitcore_sweep.launch", "--parent", str(os.getpid())]
        if slot.cpus:
            launcher += ["--cpus", ",".join(map(str, slot.cpus))]
        with open(run_root / "trial.log", "a", encoding="utf-8") as log:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            proc = subprocess.Popen([*launcher, "--", *command], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=slot.env(dict(os.environ)))
        self._set_attr(job.trial_id, CHILD, processes.identity(proc.pid))
        with self.lock:
            self.procs[job.number] = proc
        code = proc.wait()
        with self.lock:
            self.procs.pop(job.number, None)
        if self.interrupted:  # left RUNNING: the next start of the sweep resumes it
            return
        self._tell(job, latest_run(run_root), code)

    def _tell(self, job: Job, run_dir: Path | None, code: int | None) -> None:
        from optuna.trial import TrialState

        summary = run_summary(run_dir)
        status = summary.get("status") or ("no run" if run_dir is None else "unknown")
        value = summary.get("best_value")
        if status in ("completed", "early_stopped") and value is not None:
            state = TrialState.COMPLETE
        elif status in ("pruned", "diverged"):
            state = TrialState.PRUNED
        else:
            state = TrialState.FAIL
        facts = {"status": status, "run_dir": str(run_dir) if run_dir else None,
                 "epochs": summary.get("epochs_completed"), "wall_time_s": summary.get("wall_time_s"),
                 "stopped": summary.get("stopped"), "exit_code": code}
        self._set_attr(job.trial_id, "vitcore_run", facts)
        with self.lock:
            self.record(job.number, state, float(value) if state == TrialState.COMPLETE else None)
            self.inflight.pop(job.number, None)
            self.failures_in_a_row = self.failures_in_a_row + 1 if state == TrialState.FAIL else 0
            if state != TrialState.FAIL:
                self.outcome.told.append(job.number)
            self.echo(self._progress(job, state, status, summary, run_dir, code))
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                self.outcome.stopped_reason = (
                    f"{self.failures_in_a_row} trials failed in a row; see "
                    f"{self.sweep.sweep_dir / f'trial-{job.number}' / 'trial.log'}"
                )

    def record(self, number: int, state: Any, value: float | None = None) -> None:
        """Tell the study how trial ``number`` ended."""
        try:
            self.study.tell(number, value, state=state)
        except RuntimeError as exc:
            # The grid sampler asks to stop the study when its grid is used up, which Optuna only
            # allows inside optimize(); the trial is recorded all the same (the count stops us).
            recorded = self.study.get_trials(deepcopy=False)[number].state
            if recorded != state:  # e.g. failed as stale by another machine meanwhile
                self.echo(f"trial {number}: could not record its end ({exc})")

    def _progress(self, job: Job, state: Any, status: str, summary: dict[str, Any], run_dir: Path | None,
                  code: int | None) -> str:
        from optuna.trial import TrialState

        params = " ".join(f"{p}={_short(v)}" for p, v in job.params.items())
        metric = self.sweep.metric
        if state == TrialState.COMPLETE:
            what = f"{status:<9}"
            result = f"{metric} {summary['best_value']:.4f}"
        elif state == TrialState.PRUNED:
            epoch = (summary.get("stopped") or {}).get("epoch", summary.get("epochs_completed"))
            what = f"pruned at epoch {epoch}" if status == "pruned" else f"diverged at epoch {summary.get('epochs_completed')}"
            last = self.study.get_trials(deepcopy=False)[job.number].intermediate_values
            result = f"{metric} {last[max(last)]:.4f}" if last else f"{metric} -"
        else:
            what = f"FAILED ({status}, exit {code})"
            result = f"log {self.sweep.sweep_dir / f'trial-{job.number}' / 'trial.log'}"
        try:
            best = self.study.best_trial
            best_text = f"best {best.value:.4f} (trial {best.number})"
        except ValueError:
            best_text = "best -"
        trials = self.study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        target = self.sweep.trials
        count = f"{done}/{target}" if target else f"{done}"
        return f"trial {job.number:<3} {what}  {params}  {result}  {best_text}  [{count}]"

    # -- the whole invocation -------------------------------------------------------------------

    def heartbeat(self) -> None:
        from vitcore_sweep.optuna_setup import HEARTBEAT_S

        while not self.stop.wait(HEARTBEAT_S / 2):
            with self.lock:
                ids = list(self.inflight.values())
            for trial_id in ids:
                self.storage.record_heartbeat(trial_id)

    def worker(self, slot: processes.Slot) -> None:
        while not self.stop.is_set():
            job = self.next_job()
            if job is None:
                return
            if job == "wait":
                self.stop.wait(1.0)
                continue
            assert isinstance(job, Job)
            self.run_job(job, slot)

    def run(self) -> Outcome:
        self.started = time.monotonic()  # the time budget counts from the first trial on
        slots = processes.plan_slots(self.jobs)
        beat = threading.Thread(target=self.heartbeat, name="sweep-heartbeat", daemon=True)
        beat.start()
        workers = [threading.Thread(target=self.worker, args=(slot,), name=f"sweep-worker-{slot.index}")
                   for slot in slots]
        previous = _sigterm_as_interrupt()
        try:
            for thread in workers:
                thread.start()
            while any(t.is_alive() for t in workers):
                for thread in workers:
                    thread.join(0.2)
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop.set()
            self._stop_children()
            for thread in workers:
                thread.join()
            self.outcome.interrupted = True
        finally:
            self.stop.set()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return self.outcome

    def _stop_children(self) -> None:
        """Ctrl-C reached the trials too (one process group); a SIGTERM to the sweep alone did not:
        give them a moment, then SIGTERM what still runs."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(p.poll() is None for p in list(self.procs.values())):
            time.sleep(0.1)
        for proc in list(self.procs.values()):
            if proc.poll() is None:
                processes.stop_process(proc.pid, processes.start_token(proc.pid))


def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
    return f"{prefix or 'the sweep'} was {old!r}, is now {new!r}" if not isinstance(old, dict) else prefix


def prepare_folder(sweep: Sweep, storage_url: str) -> None:
    """Create the sweep folder (refusing one that holds ordinary runs) and write sweep.json."""
    folder = sweep.sweep_dir
    if folder.is_dir() and any(p.is_dir() and p.name[:1] == "v" and p.name[1:].isdigit() for p in folder.iterdir()):
        raise VitcoreError(f"{folder} holds runs of a spec named {sweep.name!r}; give the sweep another name "
                           f"(name: in {sweep.path})")
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "sweep.json", sweep.record(storage_url))


def run_sweep(sweep: Sweep, jobs: int = 1, storage_url: str | None = None,
              echo: Callable[[str], None] = print) -> Outcome:
    """Run (or continue) ``sweep`` until its trial count or time budget; see the module docstring."""
    if jobs < 1:
        raise VitcoreError("--jobs: give 1 or more")
    url = storage_url or sweep.storage_url
    prepare_folder(sweep, url)
    controller = Controller(sweep, jobs, url, echo)
    target = f"{sweep.trials} trials" if sweep.trials else "no trial limit"
    with locked(sweep.sweep_dir / "study.ask"):  # two sweep processes starting together take turns
        controller.open_study()
        echo(f"Sweep {sweep.name}: {target}, {jobs} at a time, study {url}")
        controller.recover()
    return controller.run()
