"""Fixtures: real training runs on ``shapes`` (a 2-block 32 px ViT trains in seconds on a CPU) and
real dashboards (``python -m vitcore dashboard`` in a child process on a free loopback port).

Helpers are fixtures, not importable functions, so they never clash with other suites' conftests
when every suite runs in one pytest process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

#: A 2-block ViT on 32 px shapes; ``epochs`` and ``train_per_class`` set how long it trains.
MODEL = {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2}


def _spec(output_dir: Path, data_root: Path, name: str, epochs: int, train_per_class: int,
          visualizers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "output_dir": str(output_dir),
        "data": {"type": "shapes", "root": str(data_root), "classes": ["circle", "cross", "square"],
                 "train_per_class": train_per_class, "val_per_class": 8, "image_size": 32},
        "model": dict(MODEL),
        "augmentations": [],
        "train": {"epochs": epochs, "batch_size": 8, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0,
                  "log_every_steps": 1, "seed": 0},
        "sinks": [{"type": "jsonl"}],
        "visualizers": visualizers,
        "exporters": [],
    }


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """Where the runs' ``shapes`` pictures are drawn (outside every runs ROOT)."""
    return tmp_path_factory.mktemp("shapes-data")


@pytest.fixture(scope="session")
def make_spec(shapes_data) -> Callable[..., dict[str, Any]]:
    """``make_spec(output_dir, name, epochs=2, train_per_class=24, visualizers=None)``: a run spec."""

    def make(output_dir: Path, name: str = "shapes", epochs: int = 2, train_per_class: int = 24,
             visualizers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        chosen = visualizers if visualizers is not None else [{"type": "curves"}, {"type": "confusion_matrix"}]
        data = shapes_data / f"{train_per_class}"
        return _spec(output_dir, data, name, epochs, train_per_class, chosen)

    return make


@pytest.fixture(scope="session")
def start_training() -> Callable[[dict[str, Any], Path], subprocess.Popen]:
    """``start_training(spec, folder)``: ``python -m vitcore run SPEC`` as a child process."""

    def start(spec: dict[str, Any], folder: Path) -> subprocess.Popen:
        path = folder / f"{spec['name']}.json"
        path.write_text(json.dumps(spec))
        return subprocess.Popen([sys.executable, "-m", "vitcore", "run", str(path)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    return start


@dataclass
class Pacer:
    """Holds a training process still (SIGSTOP) and lets it go on (SIGCONT), so that a test sees
    it running however fast the machine is; the run itself is untouched."""

    process: subprocess.Popen
    metrics: Path

    def records(self) -> int:
        try:
            return self.metrics.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def hold_after(self, count: int, timeout: float = 120) -> int:
        """Let it run until metrics.jsonl has more than ``count`` records, then hold it; returns
        how many it has."""
        self.go()
        deadline = time.monotonic() + timeout
        while self.records() <= count:
            assert self.process.poll() is None, "the run ended before writing more records"
            assert time.monotonic() < deadline, "the run wrote no more records"
            time.sleep(0.01)
        self.process.send_signal(signal.SIGSTOP)
        return self.records()

    def go(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def pace() -> Iterator[Callable[[subprocess.Popen, Path], Pacer]]:
    """``pace(process, run_dir)``: a Pacer; every held process is let go when the test ends."""
    pacers: list[Pacer] = []

    def make(process: subprocess.Popen, run_dir: Path) -> Pacer:
        pacers.append(Pacer(process, run_dir / "metrics.jsonl"))
        return pacers[-1]

    yield make
    for pacer in pacers:
        pacer.go()


@pytest.fixture(scope="session")
def finished_root(tmp_path_factory, make_spec, start_training) -> Path:
    """A runs ROOT holding one finished run, ``shapes-done/v1``, with attention and FC pictures."""
    base = tmp_path_factory.mktemp("finished")
    root = base / "runs"
    spec = make_spec(root, "shapes-done", epochs=3, visualizers=[
        {"type": "curves"}, {"type": "confusion_matrix"}, {"type": "attention_stats", "num_samples": 2},
        {"type": "fc_layers"}])
    process = start_training(spec, base)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert (root / "shapes-done" / "v1" / "checkpoints" / "best.pt").is_file()
    return root


@dataclass
class Dashboard:
    """A ``vitcore dashboard`` child process and a small HTTP client for it."""

    process: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)

    def request(self, path: str, *, method: str = "GET", data: bytes | None = None,
                headers: dict[str, str] | None = None, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers, body)`` of a request to the dashboard; HTTP errors are answers too."""
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                         headers=dict(headers or {}))
        if host is not None:
            request.add_unredirected_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        status, _headers, body = self.request(path, **kwargs)
        assert status == expect, f"{path}: {status} {body[:500]!r}"
        return json.loads(body)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> str:
        """Stop it with ``sig``; returns everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        time.sleep(0.2)  # the reader thread takes the last lines
        return "".join(self.output)

    @property
    def printed(self) -> str:
        return "".join(self.output)


def _dashboards() -> Iterator[Callable[..., Dashboard]]:
    """``start(root, *args, env=None)``: a dashboard on a free loopback port, stopped at the end at
    the latest; waits for the address it prints."""
    started: list[Dashboard] = []

    def start(root: Path, *args: str, env: dict[str, str] | None = None) -> Dashboard:
        process = subprocess.Popen([sys.executable, "-m", "vitcore", "dashboard", str(root), "--port", "0", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **(env or {})})
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"vitcore dashboard on (http://\S+?/)(\?token=\S+)? ", line)
            if found:
                dashboard = Dashboard(process, found.group(1), lines)
                started.append(dashboard)
                # Keep reading what it prints, so that a full pipe never blocks it.
                threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()
                return dashboard
        process.kill()
        raise AssertionError("the dashboard did not start:\n" + "".join(lines) + (process.stdout.read() or ""))

    yield start
    for dashboard in started:
        dashboard.stop()


@pytest.fixture
def start_dashboard() -> Iterator[Callable[..., Dashboard]]:
    """``start_dashboard(root, *args, env=None)``: dashboards stopped when the test ends."""
    yield from _dashboards()


@pytest.fixture(scope="session")
def session_dashboards() -> Iterator[Callable[..., Dashboard]]:
    yield from _dashboards()


@pytest.fixture(scope="session")
def finished_dashboard(finished_root, session_dashboards) -> Dashboard:
    """One dashboard on ``finished_root`` shared by the read-only tests."""
    return session_dashboards(finished_root)


@pytest.fixture
def free_port() -> Callable[[], int]:
    import socket

    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    return pick
