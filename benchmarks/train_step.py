"""Training-step throughput: the vitcore engine's hot loop against a bare PyTorch loop.

Same model, batches (synthetic uint8, already on the device), precision, optimizer and compile
setting, interleaved in one process so both see the same machine state.

    python benchmarks/train_step.py --model vit_cpu_small --batch 64 --steps 20          # CPU
    python benchmarks/train_step.py --model vit_b16 --batch auto --precision bf16 --compile  # CUDA
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, timed  # noqa: E402

from vitcore.engine.harness import MODELS, bare_epoch, engine_epoch, make_setup  # noqa: E402

#: Dense bf16 peak of the GPUs we quote MFU against (FLOP/s).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def flops_per_step(setup, batch_images: torch.Tensor, targets: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss = torch.nn.functional.cross_entropy(setup.raw_model(setup.normalize(batch_images)), targets)
        loss.backward()
    setup.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="vit_cpu_small")
    parser.add_argument("--batch", type=lambda v: v if v == "auto" else int(v), default=64,
                        help="images per step, or auto: the largest that fits in memory, as a run chooses it")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    setup = make_setup(args.model, args.batch, args.steps * (args.repeats * 2 + 2), args.precision,
                       args.compile, args.device)
    device = setup.trainer.device
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
        "model": args.model, "batch": batch, "batch_auto": args.batch == "auto", "steps": args.steps, "repeats": args.repeats,
        "device": str(device), "precision": setup.trainer.precision.name, "compile": args.compile,
        "engine_images_per_sec": round(engine_ips, 1), "bare_images_per_sec": round(bare_ips, 1),
        "engine_vs_bare": round(engine_ips / bare_ips, 4), "machine": machine(),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        flops = flops_per_step(setup, *setup.batches[0])
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
        step_time = min(engine_times) / args.steps
        result["tflops_per_step"] = round(flops / 1e12, 3)
        if peak:
            result["mfu"] = round(flops / step_time / peak, 4)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
