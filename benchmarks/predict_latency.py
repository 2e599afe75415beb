"""The everyday commands' latency: `vitcore predict RUN_DIR one.png` against `python -c "import torch"`,
both timed end to end as child processes, alternately, in the same run (the bar: ratio <= 1.5).
Also `vitcore evaluate` on 30 images and `vitcore predict model.onnx one.png`.

    python benchmarks/predict_latency.py                       # trains a quickstart-sized run first
    python benchmarks/predict_latency.py --run-dir runs/quickstart/v1 --repeats 9

Without --run-dir the quickstart's model (examples/quickstart.json) is trained for one epoch on a
few images in a temporary folder: the latency depends on the model's size, not on its accuracy.
Prints one JSON object; the figures are medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpu_info import cpu_name  # benchmarks/ is this script's folder

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.json"


def vitcore_command() -> list[str]:
    """The console script beside this Python (what a user types), else ``python -m vitcore``."""
    script = Path(sys.executable).with_name("vitcore")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "vitcore"]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def train_run(folder: Path, env: dict[str, str]) -> Path:
    """The quickstart's model, one epoch on 20 images per class: a real run directory in seconds."""
    overrides = ["train.epochs=1", "data.train_per_class=20", "data.val_per_class=6", f"output_dir={folder}",
                 "sinks=[]", "visualizers=[]"]
    command = [*vitcore_command(), "run", str(QUICKSTART), *[a for o in overrides for a in ("--set", o)]]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"training the benchmark's run failed:\n{done.stderr[-3000:]}")
    return next(folder.glob("*/v*"))


def write_inputs(run_dir: Path, folder: Path, count: int) -> tuple[Path, Path]:
    """One 256 px PNG, and ``count`` PNGs spread over the run's classes for ``evaluate``."""
    import numpy as np
    from PIL import Image

    classes = json.loads((run_dir / "summary.json").read_text())["classes"]
    rng = np.random.default_rng(0)
    image = folder / "one.png"
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(image)
    data = folder / "labelled"
    for i in range(count):
        target = data / classes[i % len(classes)]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(target / f"{i}.png")
    return image, data


def onnx_model(run_dir: Path, env: dict[str, str]) -> Path | None:
    """The run's ONNX export (made now if missing), or None without vitcore-export-onnx."""
    existing = run_dir / "exports" / "model.onnx"
    if existing.is_file():
        return existing
    done = subprocess.run([*vitcore_command(), "export", str(run_dir), "--format", "onnx"], capture_output=True,
                          text=True, env=env)
    return existing if done.returncode == 0 and existing.is_file() else None


#: `vitcore predict` with torchvision imported the plain way (torch._dynamo included), for comparison.
PLAIN_IMPORT = ("import sys, vitcore.lazy_dynamo as lazy; lazy.install = lambda: None; "
                "from vitcore.cli import main; sys.argv[0] = 'vitcore'; main()")


def machine() -> str:
    cpu = cpu_name()
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, help="A finished run (default: train a quickstart-sized one).")
    parser.add_argument("--repeats", type=int, default=7, help="Alternating rounds of every command.")
    parser.add_argument("--evaluate-images", type=int, default=30)
    parser.add_argument("--no-onnx", action="store_true", help="Skip the ONNX predict path.")
    parser.add_argument("--plain-import", action="store_true",
                        help="Also time predict with torchvision imported the plain way (torch._dynamo loaded).")
    args = parser.parse_args()

    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="vitcore-predict-bench-"))
    try:
        run_dir = args.run_dir.resolve() if args.run_dir else train_run(work / "runs", env)
        image, labelled = write_inputs(run_dir, work, args.evaluate_images)
        vitcore = vitcore_command()
        commands = {
            "import_torch": [sys.executable, "-c", "import torch"],
            "predict": [*vitcore, "predict", str(run_dir), str(image)],
            "evaluate": [*vitcore, "evaluate", str(run_dir), "--data", str(labelled)],
        }
        if args.plain_import:
            commands["predict_plain_import"] = [sys.executable, "-c", PLAIN_IMPORT, "predict", str(run_dir),
                                                str(image)]
        onnx = None if args.no_onnx else onnx_model(run_dir, env)
        if onnx is not None:
            commands["predict_onnx"] = [*vitcore, "predict", str(onnx), str(image)]
        timed(commands["predict"], env)  # warm the file cache once, untimed, as for every later command
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                times[name].append(timed(command, env))
        pairs = [p / t for p, t in zip(times["predict"], times["import_torch"])]
        result = {
            "run_dir": str(run_dir),
            "repeats": args.repeats,
            "median_s": {name: round(statistics.median(values), 3) for name, values in times.items()},
            "min_s": {name: round(min(values), 3) for name, values in times.items()},
            "predict_vs_import_torch": round(statistics.median(times["predict"])
                                             / statistics.median(times["import_torch"]), 3),
            "predict_vs_import_torch_median_pair": round(statistics.median(pairs), 3),
            "evaluate_images": args.evaluate_images,
            "commands": {name: " ".join(command) for name, command in commands.items()},
            "machine": machine(),
        }
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
