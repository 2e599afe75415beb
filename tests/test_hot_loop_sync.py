"""The hot loop reads values from the device only once per logging interval (no per-step sync)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import vitcore
from vitcore.engine.harness import engine_epoch, make_setup

PACKAGE = str(Path(vitcore.__file__).parent)
READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


def test_values_are_read_once_per_logging_interval_and_once_per_epoch(monkeypatch):
    setup = make_setup("vit_cpu_small", batch=4, steps=12, log_every_steps=5)
    calls: list[tuple[str, str]] = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(PACKAGE):  # reads by vitcore's own code, not torch internals
                calls.append((_name, f"{Path(caller).name}:{sys._getframe(1).f_lineno}"))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    engine_epoch(setup, 12)
    # Steps 5 and 10 log; the epoch's own totals are read once at its end.
    assert [name for name, _ in calls] == ["tolist"] * 3, calls
    assert len({where for _, where in calls}) == 1, "all reads go through one place"
