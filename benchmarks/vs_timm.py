"""vitcore against timm's own ``train.py`` on one recipe: images/second, CPU-seconds, start-up and
end-of-run time, in alternating pairs so the drift of a shared machine cancels.

One generated image folder (the ``shapes`` pictures as PNG files, ``root/{train,val}/<class>``)
and one recipe (``RECIPE``: model and sizes, AdamW, lr, warmup + cosine per update, label
smoothing, random-resized-crop + flip + colour jitter, batch, epochs, workers, precision, seed)
from which both command lines are written, so they cannot drift apart. Each pair runs both tools
once, the order swapped every pair; each run is timed from its output lines, read as they come:

* start-up: process start to the line printed just before the first step (timm: ``Scheduled
  epochs``; vitcore: the start banner ``Run <dir>``);
* training: from there to the last validation line of the last epoch (timm: its last ``Test:``
  line; vitcore: the console sink's last ``epoch N | ...`` line, written after that epoch's
  checkpoints, so vitcore's window holds a little more work); ``images_per_sec`` is
  epochs x steps x batch over this window, validation included for both;
* end of run: from there to the process's exit (vitcore: pictures, exports, report);
* CPU-seconds: user + system time of the process and its reaped children (the loader workers).

timm's ``train.py`` is not part of vitcore: fetch it from timm's public repository (a clone of
github.com/huggingface/pytorch-image-models, ``git show HEAD:train.py > .cache/timm/train.py``)
and pass it with ``--train-py`` or leave it in ``.cache/timm/train.py`` or ``$VITCORE_CACHE/timm/``.

    python benchmarks/vs_timm.py --images 8000 --val-images 1000 --size 28 --pairs 11
    python benchmarks/vs_timm.py --images 400 --val-images 100 --epochs 1 --pairs 1   # CI size
    python benchmarks/vs_timm.py --profile both --pairs 1     # py-spy flame data of each tool
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parent.parent

#: The recipe both tools train; every field is written into both command lines.
RECIPE: dict = {
    "model": "vit_tiny_patch16_224", "patch_size": 4, "depth": 4, "embed_dim": 96, "num_heads": 3,
    "batch_size": 64, "epochs": 2, "warmup_epochs": 1, "lr": 1e-3, "min_lr": 1e-6, "weight_decay": 0.05,
    "label_smoothing": 0.1, "scale": [0.08, 1.0], "ratio": [3 / 4, 4 / 3], "hflip": 0.5, "color_jitter": 0.4,
    "interpolation": "bicubic", "crop_pct": 1.0, "workers": 2, "seed": 0, "device": "cpu", "precision": "fp32",
}


@dataclass
class Timing:
    tool: str
    pair: int
    wall_s: float
    startup_s: float | None = None
    train_s: float | None = None
    end_s: float | None = None
    cpu_s: float | None = None
    images_per_sec: float | None = None
    val_acc1: float | None = None
    returncode: int = 0
    tail: list[str] = field(default_factory=list)


def find_train_py(given: Path | None) -> Path:
    """timm's train.py: the argument, else ``.cache/timm/train.py`` here, else ``$VITCORE_CACHE/timm``."""
    if given is not None:
        if not given.is_file():
            raise SystemExit(f"--train-py {given}: no such file")
        return given
    from vitcore.paths import cache_dir

    for candidate in (REPO / ".cache" / "timm" / "train.py", cache_dir() / "timm" / "train.py"):
        if candidate.is_file():
            return candidate
    raise SystemExit(
        "timm's train.py was not found (looked in .cache/timm/ and $VITCORE_CACHE/timm/). Fetch it from "
        "timm's repository: git clone https://github.com/huggingface/pytorch-image-models && "
        "git -C pytorch-image-models show HEAD:train.py > .cache/timm/train.py; or pass --train-py PATH")


def make_data(root: Path, images: int, val_images: int, size: int) -> Path:
    """``root/{train,val}/<shape>/*.png``: vitcore's shapes pictures, five classes, PNG files."""
    from vitcore.builtin.shapes import DEFAULT_CLASSES, ShapesOptions, ensure_generated

    per_class = max(1, images // len(DEFAULT_CLASSES))
    val_per_class = max(1, val_images // len(DEFAULT_CLASSES))
    options = ShapesOptions(image_size=size, train_per_class=per_class, val_per_class=val_per_class,
                            min_size_fraction=0.4)
    folder = root / f"shapes-{size}px-{per_class}-{val_per_class}"
    ensure_generated(folder, options)
    return folder


def timm_command(train_py: Path, data: Path, out: Path, recipe: dict, size: int, classes: int) -> list[str]:
    """timm's train.py with the recipe. Its cosine schedule runs after a warmup prefix, per update,
    as vitcore's does (``--warmup-prefix``: the warmup epochs are added to ``--epochs``)."""
    r = recipe
    warmup = int(r["warmup_epochs"])
    command = [
        sys.executable, str(train_py), "--data-dir", str(data), "--train-split", "train", "--val-split", "val",
        "--model", r["model"], "--model-kwargs", f"img_size={size}", f"patch_size={r['patch_size']}",
        f"depth={r['depth']}", f"embed_dim={r['embed_dim']}", f"num_heads={r['num_heads']}",
        "--num-classes", str(classes), "--img-size", str(size), "--crop-pct", str(r["crop_pct"]),
        "--interpolation", r["interpolation"], "--train-interpolation", r["interpolation"],
        "-b", str(r["batch_size"]), "-vb", str(2 * r["batch_size"]),  # vitcore evaluates in double batches
        "--opt", "adamw", "--lr", str(r["lr"]), "--weight-decay", str(r["weight_decay"]),
        "--sched", "cosine", "--sched-on-updates", "--epochs", str(r["epochs"] - warmup),
        "--warmup-epochs", str(warmup), "--warmup-prefix", "--warmup-lr", "0", "--min-lr", str(r["min_lr"]),
        "--smoothing", str(r["label_smoothing"]), "--scale", *map(str, r["scale"]), "--ratio", *map(str, r["ratio"]),
        "--hflip", str(r["hflip"]), "--color-jitter", str(r["color_jitter"]),
        "--workers", str(r["workers"]), "--seed", str(r["seed"]), "--device", r["device"],
        "--output", str(out), "--experiment", "run", "--checkpoint-hist", "1",
    ]
    if r["precision"] == "bf16":
        command += ["--amp", "--amp-dtype", "bfloat16"]
    return command


def vitcore_spec(data: Path, out: Path, recipe: dict, size: int) -> dict:
    """The same recipe as a vitcore spec (defaults elsewhere: console and TensorBoard sinks, curves
    and confusion matrix, safetensors and torch exports)."""
    r = recipe
    jitter = r["color_jitter"]
    return {
        "name": "vs_timm",
        "output_dir": str(out),
        "data": {"type": "imagefolder", "root": str(data)},
        "model": {"type": "timm_vit", "name": r["model"], "img_size": size, "patch_size": r["patch_size"],
                  "depth": r["depth"], "embed_dim": r["embed_dim"], "num_heads": r["num_heads"],
                  "interpolation": r["interpolation"], "crop_pct": r["crop_pct"]},
        "augmentations": [
            {"type": "random_resized_crop", "scale": r["scale"], "ratio": r["ratio"]},
            {"type": "horizontal_flip", "p": r["hflip"]},
            *([{"type": "color_jitter", "brightness": jitter, "contrast": jitter, "saturation": jitter, "hue": 0.0}]
              if jitter else []),
        ],
        "train": {"epochs": r["epochs"], "batch_size": r["batch_size"], "optimizer": "adamw", "lr": r["lr"],
                  "min_lr": r["min_lr"], "weight_decay": r["weight_decay"], "schedule": "cosine",
                  "warmup_epochs": r["warmup_epochs"], "label_smoothing": r["label_smoothing"],
                  "num_workers": r["workers"], "seed": r["seed"], "device": r["device"],
                  "precision": r["precision"]},
    }


#: (start marker, end-of-training marker) per tool, matched against each output line.
MARKERS = {
    "timm": (re.compile(r"Scheduled epochs:"), re.compile(r"^Test:")),
    "vitcore": (re.compile(r"^Run /"), re.compile(r"^epoch\s+\d+ \|")),
}


def run_once(tool: str, pair: int, command: list[str], env: dict[str, str], images: int,
             profile: Path | None) -> Timing:
    """One run, its lines timestamped as they arrive; CPU time from ``wait4`` (children included)."""
    if profile is not None:
        command = [str(Path(sys.executable).parent / "py-spy"), "record", "-s", "-r", "50", "-f", "raw",
                   "-o", str(profile), "--", *command]
    start_re, end_re = MARKERS[tool]
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=REPO, bufsize=1)
    started = ended = None
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.perf_counter() - t0
        if started is None and start_re.search(line):
            started = now
        if end_re.search(line):
            ended = now
        tail = (tail + [line.rstrip()])[-12:]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    timing = Timing(tool, pair, round(wall, 2), cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
                    returncode=proc.returncode, tail=[] if proc.returncode == 0 else tail)
    if started is not None and ended is not None and ended > started:
        timing.startup_s, timing.train_s = round(started, 2), round(ended - started, 2)
        timing.end_s = round(wall - ended, 2)
        timing.images_per_sec = round(images / (ended - started), 1)
    return timing


def timm_accuracy(out: Path) -> float | None:
    """The last epoch's top-1 from timm's summary.csv (percent there)."""
    import csv

    files = list(out.glob("*/summary.csv"))
    if not files:
        return None
    rows = list(csv.DictReader(files[0].open()))
    return round(float(rows[-1]["eval_top1"]) / 100, 4) if rows else None


def vitcore_accuracy(out: Path) -> float | None:
    records = [json.loads(line) for path in out.glob("*/v*/metrics.jsonl") for line in path.open()]
    epochs = [r for r in records if r.get("event") == "epoch"]
    return round(epochs[-1]["val_acc1"], 4) if epochs else None


def warm_up(data: Path) -> None:
    """Untimed: the image files into the page cache, both tools' modules compiled and cached."""
    for path in data.rglob("*.png"):
        path.read_bytes()
    subprocess.run([sys.executable, "-c", "import timm, timm.data, vitcore.engine.trainer"], check=True,
                   cwd=REPO, capture_output=True)


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarise(timings: list[Timing]) -> dict:
    by_tool = {tool: [t for t in timings if t.tool == tool] for tool in ("timm", "vitcore")}
    medians = {tool: {key: median([getattr(t, key) for t in runs])
                      for key in ("images_per_sec", "wall_s", "cpu_s", "startup_s", "train_s", "end_s", "val_acc1")}
               for tool, runs in by_tool.items()}
    ratios, cpu_ratios = [], []
    for pair in sorted({t.pair for t in timings}):
        of = {t.tool: t for t in timings if t.pair == pair}
        a, b = of.get("vitcore"), of.get("timm")
        if a and b and a.images_per_sec and b.images_per_sec:
            ratios.append(a.images_per_sec / b.images_per_sec)
        if a and b and a.cpu_s and b.cpu_s:
            cpu_ratios.append(a.cpu_s / b.cpu_s)
    return {"medians": medians, "pair_ratios_images_per_sec": [round(r, 3) for r in ratios],
            "median_ratio_images_per_sec": median(ratios),
            "median_ratio_cpu_s": median(cpu_ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-py", type=Path, help="timm's train.py (default: .cache/timm/train.py).")
    parser.add_argument("--images", type=int, default=8000, help="Training images (five classes).")
    parser.add_argument("--val-images", type=int, default=1000, help="Validation images.")
    parser.add_argument("--size", type=int, default=28, help="Image side in pixels (a multiple of patch_size).")
    parser.add_argument("--pairs", type=int, default=5, help="Alternating pairs of runs.")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--batch", type=int, default=RECIPE["batch_size"])
    parser.add_argument("--workers", type=int, default=RECIPE["workers"])
    parser.add_argument("--device", default=RECIPE["device"])
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=RECIPE["precision"])
    parser.add_argument("--work-dir", type=Path, help="Data and runs go here (default: a temporary folder).")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="Extra vitcore --set FIELD=VALUE (an experiment; the recipe no longer matches).")
    parser.add_argument("--profile", choices=("none", "timm", "vitcore", "both"), default="none",
                        help="Record each run with py-spy (raw stacks, 50 Hz) into the work folder.")
    args = parser.parse_args()

    recipe = {**RECIPE, "epochs": args.epochs, "batch_size": args.batch, "workers": args.workers,
              "device": args.device, "precision": args.precision}
    if recipe["warmup_epochs"] >= recipe["epochs"]:
        recipe["warmup_epochs"] = recipe["epochs"] - 1  # timm needs one epoch after its warmup prefix
    train_py = find_train_py(args.train_py)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="vs-timm-"))
    work.mkdir(parents=True, exist_ok=True)
    data = make_data(work / "data", args.images, args.val_images, args.size)
    train_count = sum(1 for _ in (data / "train").rglob("*.png"))
    images = recipe["epochs"] * (train_count // recipe["batch_size"]) * recipe["batch_size"]
    spec_path = work / "vitcore.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VITCORE_CACHE": str(work / "vitcore-cache")}
    warm_up(data)

    timings: list[Timing] = []
    commands: dict[str, list[str]] = {}
    for pair in range(args.pairs):
        order = ("timm", "vitcore") if pair % 2 == 0 else ("vitcore", "timm")
        for tool in order:
            out = work / "runs" / f"{tool}-{pair}"
            if tool == "timm":
                command = timm_command(train_py, data, out, recipe, args.size, 5)
            else:
                spec_path.write_text(json.dumps(vitcore_spec(data, out, recipe, args.size), indent=2))
                command = [sys.executable, "-m", "vitcore", "run", str(spec_path)]
                for override in args.overrides:
                    command += ["--set", override]
            commands[tool] = command
            profile = work / f"profile-{tool}-{pair}.txt" if args.profile in (tool, "both") else None
            timing = run_once(tool, pair, command, env, images, profile)
            timing.val_acc1 = timm_accuracy(out) if tool == "timm" else vitcore_accuracy(out)
            timings.append(timing)
            print(json.dumps(asdict(timing)), file=sys.stderr, flush=True)

    from common import machine

    import timm
    result = {
        "machine": f"{machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end",
        "timm_version": timm.__version__,
        "train_py": {"path": str(train_py), "sha256": hashlib.sha256(train_py.read_bytes()).hexdigest()[:16]},
        "data": {"root": str(data), "train_images": train_count, "size": args.size},
        "recipe": recipe,
        "commands": {tool: shlex.join(command) for tool, command in commands.items()},
        "vitcore_spec": json.loads(spec_path.read_text()),
        **summarise(timings),
        "runs": [asdict(t) for t in timings],
    }
    print(json.dumps(result, indent=2))
    if any(t.returncode for t in timings):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
