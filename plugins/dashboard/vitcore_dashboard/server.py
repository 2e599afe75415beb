"""Serving the dashboard: the listening socket, uvicorn, TensorBoard beside it, and a clean stop.

Ctrl-C and SIGTERM both stop uvicorn gracefully, then TensorBoard's whole process group: no
child outlives the dashboard (on Linux not even when the dashboard itself is SIGKILLed, through
the parent-death signal).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vitcore_dashboard.app import LOOPBACK_NAMES, Settings, create_app


class Stopped(Exception):
    """Raised by the SIGINT/SIGTERM handlers once uvicorn has shut down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_warning(host: str, token: str | None) -> str | None:
    """The warning printed when the dashboard listens beyond this machine."""
    if is_loopback(host):
        return None
    advice = "" if token else " Give --token so that only people who have it get in."
    return (f"Warning: listening on {host}, not 127.0.0.1: anyone who can reach this machine on the network "
            f"can read the runs and their pictures.{advice}")


def open_socket(host: str, port: int) -> socket.socket:
    """A listening socket, so that ``--port 0`` can print the port the system chose."""
    from vitcore.api import VitcoreError

    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bare, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise VitcoreError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port "
                           "(0 picks a free one)") from None
    sock.set_inheritable(False)
    return sock


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In the child, before exec: SIGTERM when the dashboard dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    """A process the dashboard started, in its own process group (stopped as a whole)."""

    process: subprocess.Popen

    @classmethod
    def start(cls, command: list[str]) -> "Child":
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=preexec)
        return cls(process)

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # the group may hold others (the leader gone first): clean them too
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def tensorboard_command(root: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--host", host.strip("[]"),
            "--port", str(port)]


def _url(host: str, port: int) -> str:
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else ("127.0.0.1" if bare in ("0.0.0.0", "") else bare)
    return f"http://{shown}:{port}/"


def serve(root: Path, host: str = "127.0.0.1", port: int = 6060, token: str | None = None,
          tensorboard: bool = False, tensorboard_port: int = 6006, max_upload_bytes: int | None = None,
          echo: Callable[[str], None] = print) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM; returns the exit code (0 after a clean stop)."""
    import uvicorn

    from vitcore.api import VitcoreError

    root = Path(root)
    if not root.is_dir():
        raise VitcoreError(f"{root}: no such folder (run `vitcore run SPEC` first, or give the runs folder)")
    warning = bind_warning(host, token)
    if warning:
        echo(warning)
    allowed = None if warning else tuple(dict.fromkeys([*LOOPBACK_NAMES, host.strip("[]").lower()]))

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    sock: socket.socket | None = None
    board: Child | None = None
    try:
        sock = open_socket(host, port)
        bound_port = sock.getsockname()[1]
        tb_url = None
        if tensorboard:
            # TensorBoard has no token: behind one, it stays on this machine.
            tb_host = host if token is None else "127.0.0.1"
            board = Child.start(tensorboard_command(root, tb_host, tensorboard_port))
            tb_url = _url(tb_host, tensorboard_port)
        settings = Settings(root=root, token=token, tensorboard_url=tb_url, allowed_hosts=allowed,
                            **({"max_upload_bytes": max_upload_bytes} if max_upload_bytes else {}))
        app = create_app(settings)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3)
        server = uvicorn.Server(config)
        url = _url(host, bound_port) + (f"?token={token}" if token else "")
        echo(f"vitcore dashboard on {url} (runs under {root.resolve()})")
        if tb_url:
            alone = " (127.0.0.1 only: TensorBoard knows no token)" if token is not None and not is_loopback(host) else ""
            echo(f"TensorBoard on {tb_url}{alone} (pid {board.process.pid}; stopped with the dashboard)")
        echo("Ctrl-C stops it.")
        server.run(sockets=[sock])
        return 0 if server.started else 1
    except Stopped as stopped:
        echo(f"Stopped ({stopped}).")
        return 0
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        if board is not None:
            board.stop()
        if sock is not None:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
