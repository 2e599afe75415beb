"""The ``vitcore dashboard`` command (added through ``register_commands``; it replaces the core's
TensorBoard-only command of the same name). Only click is imported here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def add_commands(cli: Any) -> None:
    """Add (or replace) ``dashboard`` in the ``vitcore`` click group."""

    @click.command("dashboard")
    @click.argument("root", default="runs", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to listen on. Anything but loopback lets others in: give --token then.")
    @click.option("--port", default=6060, show_default=True, type=click.IntRange(0, 65535),
                  help="Port to listen on (0: any free port, printed).")
    @click.option("--token", envvar="VITCORE_DASHBOARD_TOKEN", default=None, metavar="TEXT",
                  help="Require this token on every request (header 'Authorization: Bearer TEXT' or "
                       "?token=TEXT); also read from VITCORE_DASHBOARD_TOKEN.")
    @click.option("--tensorboard", is_flag=True, help="Also start TensorBoard on ROOT (stopped with the dashboard).")
    @click.option("--tensorboard-port", default=6006, show_default=True, type=click.IntRange(1, 65535))
    @click.option("--max-upload-mb", default=8.0, show_default=True, type=click.FloatRange(0.01, 1024),
                  help="Largest picture the attention explorer accepts as an upload.")
    def dashboard(root: Path, host: str, port: int, token: str | None, tensorboard: bool,
                  tensorboard_port: int, max_upload_mb: float) -> None:
        """A live web dashboard of ROOT's runs: runs list, live curves, compare, model and
        attention explorer (Ctrl-C stops it)."""
        from vitcore_dashboard.server import serve

        if token is not None and not token.strip():
            raise click.BadParameter("give a non-empty token", param_hint="--token")
        code = serve(root, host, port, token, tensorboard, tensorboard_port, int(max_upload_mb * 1024 * 1024),
                     echo=click.echo)
        raise SystemExit(code)

    cli.add_command(dashboard)
