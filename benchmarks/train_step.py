"""Training-step throughput: the vitcore engine's hot loop against a bare PyTorch loop.

Same model, batches (synthetic uint8, already on the device), precision, optimizer and compile
setting, interleaved in one process so both see the same machine state.

    python benchmarks/train_step.py --model vit_cpu_small --batch 64 --steps 20          # CPU
    python benchmarks/train_step.py --model gpu --batch auto --precision bf16 --compile      # CUDA
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, timed  # noqa: E402

from vitcore.engine.harness import MODELS, bare_epoch, engine_epoch, make_setup  # noqa: E402

#: Dense bf16 datasheet peak of the GPUs we quote MFU against (FLOP/s).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
#: FLOPs are counted on this many images of the batch and scaled: every op of a ViT is per image,
#: so the count is linear in the batch (a test checks it), and a full-batch eager pass could need
#: more memory than the compiled step that batch_size auto sized.
FLOP_COUNT_IMAGES = 8


def flops_per_step(setup, images: torch.Tensor, targets: torch.Tensor) -> int:
    """FLOPs of one forward + backward at the batch of ``images``, counted by
    torch.utils.flop_counter on the eager model under the run's autocast.

    Attention is counted through the math backend of scaled_dot_product_attention (two batched
    matmuls, as the fused kernels' own formulas count it): the counter knows the CUDA kernels but
    not the CPU flash kernel, and one path makes the CPU and CUDA counts of a model the same.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    batch = images.shape[0]
    count = min(batch, FLOP_COUNT_IMAGES)
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        with setup.precision.autocast(setup.device):
            logits = setup.raw_model(setup.normalize(images[:count]))
            loss = torch.nn.functional.cross_entropy(logits, targets[:count])
        loss.backward()
    setup.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops() * batch // count


@functools.lru_cache(maxsize=None)
def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """What a large matmul in ``dtype`` reaches on this device (FLOP/s): the ceiling a model can
    approach. Measured once per process."""
    size, repeats = (8192, 20) if device.type == "cuda" else (1024, 5)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    seconds = timed(lambda: [a @ b for _ in range(repeats)], device)
    return 2 * size**3 * repeats / seconds


def peak_host_memory_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def significant(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def utilisation(setup, seconds_per_step: float) -> dict:
    """FLOPs per step, achieved FLOP/s and MFU against a measured matmul peak (and, on a known
    GPU, the datasheet). The same code on CPU (fp32 peak) and CUDA (the run's autocast dtype)."""
    device = setup.device
    flops = flops_per_step(setup, *setup.batches[0])
    achieved = flops / seconds_per_step
    dtype = setup.precision.dtype or torch.float32
    peak = matmul_peak(device, dtype)
    figures = {
        "flops_per_step": flops,
        "achieved_tflops": significant(achieved / 1e12),
        "matmul_peak_dtype": str(dtype).removeprefix("torch."),
        "matmul_peak_tflops": significant(peak / 1e12),
        "mfu_vs_matmul_peak": round(achieved / peak, 4),
    }
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        datasheet = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
        if datasheet:
            figures["mfu_vs_datasheet"] = round(achieved / datasheet, 4)
    return figures


def measure(args: argparse.Namespace, model_name: str) -> dict:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="vitcore-bench-"))
    setup = make_setup(model_name, args.batch, args.steps * (args.repeats * 2 + 2), args.precision,
                       args.compile, args.device, checkpoint_every_steps=args.checkpoint_every_steps,
                       checkpoint_dir=folder)
    device = setup.device
    batch = setup.batches[0][0].shape[0]
    engine_epoch(setup, 3)  # warm-up (and compilation) for both paths
    bare_epoch(setup, 3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    engine_times, bare_times = [], []
    for _ in range(args.repeats):  # interleaved: drift hits both alike
        engine_times.append(timed(lambda: engine_epoch(setup, args.steps), device))
        bare_times.append(timed(lambda: bare_epoch(setup, args.steps), device))
    images = batch * args.steps
    engine_ips, bare_ips = images / min(engine_times), images / min(bare_times)
    result = {
        "model": model_name, "batch": batch, "batch_auto": args.batch == "auto", "steps": args.steps,
        "repeats": args.repeats, "device": str(device), "precision": setup.precision.name,
        "compile": args.compile, "checkpoint_every_steps": args.checkpoint_every_steps,
        "engine_images_per_sec": round(engine_ips, 1),
        "bare_images_per_sec": round(bare_ips, 1), "engine_vs_bare": round(engine_ips / bare_ips, 4),
        # Each repeat's pair ran back to back: the median of their ratios shrugs off a machine
        # whose speed drifts between repeats (shared VMs), which best-of-repeats does not.
        "engine_vs_bare_median_pair": round(statistics.median(b / e for e, b in zip(engine_times, bare_times)), 4),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    else:
        result["peak_host_memory_gib"] = round(peak_host_memory_gib(), 2)  # the whole process so far
    result.update(utilisation(setup, min(engine_times) / args.steps))
    del setup
    shutil.rmtree(folder, ignore_errors=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def measure_or_report(args: argparse.Namespace, model_name: str) -> dict:
    """One model's figures, also printed to stderr at once: a lease that ends during a later model
    keeps this one's. A failure (out of memory, a compile error) is recorded, the others still run."""
    try:
        result = measure(args, model_name)
    except Exception as exc:  # noqa: BLE001 - reported and counted in the exit status
        result = {"model": model_name, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    # Here, not in the except block: there the traceback still holds the failed model's tensors.
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_cpu_small",
                        help=f"one of {', '.join(sorted(MODELS))}, several joined by commas, or gpu "
                             "(vit_b16,vit_s16,vit_ti16)")
    parser.add_argument("--batch", type=lambda v: v if v == "auto" else int(v), default=64,
                        help="images per step, or auto: the largest that fits in memory, as a run chooses it")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint-every-steps", type=int, default=None,
                        help="the engine also writes a mid-epoch recovery checkpoint every N steps (to a temp folder)")
    args = parser.parse_args()
    # ViT-B/16 first: it carries the MFU target, so a short GPU lease measures it before the others.
    names = ["vit_b16", "vit_s16", "vit_ti16"] if args.model == "gpu" else args.model.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"--model: unknown {', '.join(unknown)}; choose from {', '.join(sorted(MODELS))}")
    results = [measure_or_report(args, name) for name in names]
    print(json.dumps({"machine": machine(), "results": results}, indent=2))
    if any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
