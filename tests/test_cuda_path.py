"""The GPU path: bf16, torch.compile, fused optimizer, no per-step synchronisation.

Skipped without CUDA (CI has none); run on a GPU machine with `pytest tests/test_cuda_path.py`.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from vitcore.engine.harness import engine_epoch, make_setup
from vitcore.engine.trainer import train
from vitcore.spec import load_dict
from vitcore.testing import tiny_spec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _syncs_during(steps: int) -> int:
    setup = make_setup("vit_cpu_small", batch=8, steps=steps + 2, precision="bf16", device="cuda",
                       log_every_steps=10_000)  # no logging read inside the epoch
    engine_epoch(setup, 2)  # warm-up: first-call allocations and lazy initialisation
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            engine_epoch(setup, steps)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_synchronisations_do_not_grow_with_the_number_of_steps():
    assert _syncs_during(4) == _syncs_during(16), "a per-step host sync crept into the hot loop"


def test_a_bf16_compiled_run_on_cuda_uses_fused_adamw_and_learns(tmp_path):
    spec = tiny_spec(tmp_path, epochs=3, device="cuda", precision="bf16", compile=True)
    result = train(load_dict(spec))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["precision"] == "bf16"
    assert summary["device"].startswith("cuda")
    assert summary["best_value"] >= 0.9
    state = torch.load(result.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["fused"] is True


def test_device_decode_on_cuda_trains(tmp_path):
    spec = tiny_spec(tmp_path, epochs=2, device="cuda", decode="device")
    result = train(load_dict(spec))
    assert json.loads((result.run_dir / "summary.json").read_text())["status"] == "completed"
