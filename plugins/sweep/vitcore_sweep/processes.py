"""What a sweep controller needs to know about processes and this machine's compute: who is still
alive (a pid alone can be reused, so its start time is kept with it), and how J parallel trials
share the CPU cores and GPUs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass


def hostname() -> str:
    return socket.gethostname()


def start_token(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat; the first two (pid, comm) are before ")"
    except (OSError, IndexError):
        return None


def alive(pid: int, token: str | None) -> bool:
    """Whether ``pid`` still runs and is the process that had ``token`` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if token is None:
        return True
    current = start_token(pid)
    return current is None or current == token


def identity(pid: int | None = None) -> dict[str, object]:
    pid = os.getpid() if pid is None else pid
    return {"host": hostname(), "pid": pid, "start": start_token(pid)}


def stop_process(pid: int, token: str | None, wait_s: float = 60.0) -> None:
    """SIGTERM (the run stops as on Ctrl-C and keeps its checkpoint), SIGKILL if it lingers."""
    import signal

    for sig, patience in ((signal.SIGTERM, wait_s), (signal.SIGKILL, 10.0)):
        if not alive(pid, token):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline and alive(pid, token):
            _reap(pid)
            time.sleep(0.2)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


@dataclass(frozen=True)
class Slot:
    """Where one of the J parallel trials runs: its CPU cores, its GPU, its thread count."""

    index: int
    cpus: tuple[int, ...] | None
    gpu: str | None
    threads: int

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env.setdefault("OMP_NUM_THREADS", str(self.threads))
        env.setdefault("MKL_NUM_THREADS", str(self.threads))
        env["PYTHONUNBUFFERED"] = "1"
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        return env


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists
    (no torch import: the controller only starts processes)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def plan_slots(jobs: int) -> list[Slot]:
    """J slots: the cores split into J disjoint sets (each trial pinned to its own), and one GPU
    each when several are visible (round robin when J exceeds them)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    gpus = visible_gpus()
    slots = []
    for i in range(jobs):
        if jobs <= len(cpus):
            share = tuple(cpus[i * len(cpus) // jobs:(i + 1) * len(cpus) // jobs])
        else:
            share = None
        gpu = gpus[i % len(gpus)] if len(gpus) > 1 else None
        slots.append(Slot(i, share, gpu, len(share) if share else 1))
    return slots
