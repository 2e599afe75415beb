"""``python -m vitcore_sweep.launch --parent PID [--cpus 0,1] -- COMMAND...``: start a trial's
``vitcore run`` so that it cannot outlive its sweep, on its share of the CPU cores.

On Linux the process asks the kernel for SIGTERM when the sweep process dies (``PR_SET_PDEATHSIG``,
kept across exec): a sweep killed with SIGKILL does not leave trials training on; SIGTERM makes
the run stop as on Ctrl-C (status ``interrupted``, last checkpoint kept), and the restarted sweep
resumes it. Then the process pins itself to its cores and becomes ``COMMAND`` (exec), so the
trial is an ordinary ``vitcore run`` process. Imports nothing heavy: it starts once per trial.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the sweep died before the request was in place
        sys.exit(143)


def main(argv: list[str]) -> None:
    if "--" not in argv:
        sys.exit("usage: python -m vitcore_sweep.launch --parent PID [--cpus 0,1] -- COMMAND...")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    settings = dict(zip(options[::2], options[1::2]))
    _die_with_parent(int(settings["--parent"]))
    cpus = settings.get("--cpus")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
