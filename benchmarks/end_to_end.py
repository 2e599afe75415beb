"""End to end: a real run (default: the quickstart on `shapes`), time per epoch and time to a
target validation accuracy, read from the run's metrics.jsonl.

    python benchmarks/end_to_end.py                       # trains examples/quickstart.json
    python benchmarks/end_to_end.py --run-dir runs/quickstart/v1   # reads a finished run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402


def figures(run_dir: Path, target: float) -> dict:
    from vitcore.metrics_file import read_records

    epochs = [r for r in read_records(run_dir) if r.get("event") == "epoch"]
    if not epochs:
        raise SystemExit(f"{run_dir}: no epoch records in metrics.jsonl")
    elapsed, reached = 0.0, None
    for record in epochs:
        elapsed += record["epoch_time"]
        if reached is None and record["val_acc1"] >= target:
            reached = {"epoch": record["epoch"], "seconds": round(elapsed, 1)}
    return {
        "run_dir": str(run_dir),
        "epochs": len(epochs),
        "mean_epoch_seconds": round(sum(r["epoch_time"] for r in epochs) / len(epochs), 2),
        "train_images_per_sec": round(sum(r["images_per_sec"] for r in epochs) / len(epochs), 1),
        "best_val_acc1": max(r["val_acc1"] for r in epochs),
        "target": target,
        "reached_target": reached,
        "total_epoch_seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="examples/quickstart.json")
    parser.add_argument("--run-dir", type=Path, help="Read this finished run instead of training.")
    parser.add_argument("--target", type=float, default=0.9)
    args = parser.parse_args()
    run_dir = args.run_dir
    if run_dir is None:
        done = subprocess.run([sys.executable, "-m", "vitcore", "run", args.spec, "--set", "sinks=[]"],
                              capture_output=True, text=True, check=True)
        line = next(x for x in done.stdout.splitlines() if x.strip().startswith("run directory"))
        run_dir = Path(line.split()[-1])
    print(json.dumps({**figures(run_dir, args.target), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
