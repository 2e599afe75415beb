"""``train.batch_size: auto``: the search, a real out-of-memory on the CPU, and a run that uses it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from vitcore.engine.batch_size import RESOLUTION, is_out_of_memory, largest_fitting, with_margin
from vitcore.engine.trainer import train
from vitcore.errors import SpecError
from vitcore.spec import load_dict
from vitcore.testing import tiny_spec


@pytest.mark.parametrize("boundary", [1, 7, 16, 100, 300, 1023])
def test_search_finds_the_boundary_within_its_resolution_in_few_steps(boundary):
    tried: list[int] = []

    def fits(batch: int) -> bool:
        tried.append(batch)
        return batch <= boundary

    found = largest_fitting(fits, 16, 1024)
    assert found <= boundary and boundary - found <= RESOLUTION
    assert len(tried) <= 16, tried


def test_search_respects_the_limit_and_reports_when_nothing_fits():
    assert largest_fitting(lambda b: True, 16, 40) == 40
    assert largest_fitting(lambda b: False, 16, 1024) == 0


def test_margin_rounds_to_multiples_of_eight_and_caps_by_the_data():
    assert with_margin(500, 1, 10_000) == 448  # 450 -> multiple of 8
    assert with_margin(500, 2, 10_000) == 896  # per process, times the processes
    assert with_margin(500, 1, 37) == 37  # never more than one epoch of data
    assert with_margin(3, 2, 1) == 2  # at least one image per process


def test_a_cpu_allocation_failure_counts_as_out_of_memory():
    oom = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: ...")
    assert is_out_of_memory(oom)
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# The probe runs real steps until the allocator really fails: a child process with its address
# space limited gives the CPU a small "device memory" to fill.
_PROBE_UNDER_A_MEMORY_LIMIT = textwrap.dedent("""
    import json, resource, torch
    from vitcore.builtin.models import TorchvisionViT
    from vitcore.components import ModelContext
    from vitcore.engine.batch_size import BatchProbe, probe_batch_size
    from contextlib import nullcontext

    torch.set_num_threads(2)
    torch.backends.mkldnn.enabled = False  # oneDNN reports a failed allocation as "could not create a primitive"
    torch.manual_seed(0)
    builder = TorchvisionViT(TorchvisionViT.Options(image_size=224, patch_size=16, depth=4,
                                                    embed_dim=192, num_heads=3))
    model = builder.build(ModelContext(num_classes=3, class_names=["a", "b", "c"]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    make_opt = lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3)
    size = lambda: int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size() + 700 * 2**20, resource.RLIM_INFINITY))
    rng_before = torch.random.get_rng_state()
    found = probe_batch_size(model, make_opt, nullcontext, torch.device("cpu"), 224, 3, limit=1024)
    rng_kept = bool(torch.equal(rng_before, torch.random.get_rng_state()))
    unchanged = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    copy = __import__("copy").deepcopy(model)
    probe = BatchProbe(copy, make_opt(copy), nullcontext, torch.device("cpu"), 224, 3)
    print(json.dumps({"found": found, "fits_found": probe.fits(found), "fits_double": probe.fits(2 * found),
                      "unchanged": unchanged, "rng_kept": rng_kept}))
""")


def test_probe_finds_a_batch_that_fits_where_twice_as_many_runs_out_of_memory():
    done = subprocess.run([sys.executable, "-c", _PROBE_UNDER_A_MEMORY_LIMIT], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert 1 <= result["found"] < 1024, result
    assert result["fits_found"] and not result["fits_double"], result
    assert result["unchanged"] and result["rng_kept"], "the probe trains a copy and leaves the run's state alone"


def test_a_run_with_auto_batch_records_the_number_it_chose(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1, batch_size="auto", device="cpu")
    result = train(load_dict(spec))
    saved = json.loads((result.run_dir / "spec.json").read_text())
    summary = json.loads((result.run_dir / "summary.json").read_text())
    # 18 images with a third held out leave 12 to train on: on the CPU auto means 64, capped by the data.
    assert summary["auto_batch_size"] == {"chosen": 12, "probed": None, "reason": "no probing on cpu"}
    assert saved["train"]["batch_size"] == 12, "a resume or a repeat must use the same batch"
    assert summary["steps"] == 1, "one batch of 12 per epoch"


@pytest.mark.parametrize("value", [0, -3, "big"])
def test_bad_batch_sizes_are_rejected_naming_the_field(tmp_path, value):
    spec = tiny_spec(tmp_path, batch_size=value)
    with pytest.raises(SpecError, match="train.batch_size"):
        load_dict(spec)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: probes real GPU memory")
def test_on_cuda_auto_batch_is_probed_and_the_run_trains(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1, batch_size="auto", device="cuda")
    result = train(load_dict(spec))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["auto_batch_size"]["probed"] >= 1
    assert summary["status"] == "completed"
