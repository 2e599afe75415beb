"""Lightweight variants of one model side by side on this machine's CPU.

For the quickstart model (examples/quickstart.json) or a ViT-S/16-sized one at 224 px trained
briefly on 224-px shapes: the fp32 run, its dynamic and static int8 ONNX files, the run pruned by
``vitcore prune`` before and after fine-tuning (and its static int8 file), and a pruned student
fine-tuned with distillation from the fp32 run (``distill`` section) and its static int8 file.
Every row: parameters, FLOPs per image, ONNX file size, onnxruntime latency at batch 1 and 32
(all files timed interleaved in one process, lowest of the rounds' medians), top-1 on the whole
validation split and top-1 agreement with the fp32 file.

    python benchmarks/lightweight.py --model quickstart --out /tmp/lw
    python benchmarks/lightweight.py --model vit_s16 --out /tmp/lw
    python benchmarks/lightweight.py --model quickstart --out /tmp/lw --no-measure   # train and prune, then
    python benchmarks/lightweight.py --model quickstart --out /tmp/lw --source /tmp/lw/quickstart/v1 --reuse-variants

Sized for a shared 2-core CPU: the source is trained on ``--train-per-class`` images per class
for ``--epochs`` (defaults below, far less than examples/quickstart.json's 1000 x 20), with
torch on ``--train-threads`` threads (1: on a 2-core machine other processes share, two
threads that wait for each other ran 5x slower than one). The runs' own ONNX exports compare
their variants on 32 images at batch 1 only (this script measures every file itself, on the
whole validation split). Latency uses onnxruntime with ``--ort-threads`` intra-op threads
(default 1, one core: the figure least disturbed by other work; 0: onnxruntime's default).
The load average before and after the timing is recorded.

Prints a markdown table and writes ``<out>/<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cpu_info import cpu_name  # benchmarks/ is this script's folder
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ONNX = {"type": "onnx", "latency_seconds": 0.05, "agreement_images": 32, "latency_batch_sizes": [1]}
#: Source training sized for a shared 2-core CPU: (train images per class, epochs).
SIZING = {"quickstart": (200, 8), "vit_s16": (10, 1)}

VIT_S16 = {
    "name": "lightweight_vit_s16",
    "data": {"type": "shapes", "train_per_class": 80, "val_per_class": 10, "image_size": 224,
             "min_size_fraction": 0.4},
    "model": {"type": "torchvision_vit", "image_size": 224, "patch_size": 16, "depth": 12, "embed_dim": 384,
              "num_heads": 6},
    "augmentations": [{"type": "horizontal_flip"}],
    "train": {"epochs": 2, "batch_size": 32, "lr": 5e-4, "warmup_epochs": 0.5, "weight_decay": 0.05},
}


def base_spec(model: str, out: Path, per_class: int, epochs: int, calibration: int) -> dict[str, Any]:
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text()) if model == "quickstart" else dict(VIT_S16)
    spec = json.loads(json.dumps(spec))
    spec.update(output_dir=str(out), sinks=[{"type": "jsonl"}], visualizers=[],
                exporters=[{**ONNX, "calibration_images": calibration}])
    spec["data"]["train_per_class"] = per_class
    spec["train"]["epochs"] = epochs
    return spec


def train_source(model: str, out: Path, per_class: int, epochs: int, calibration: int) -> Path:
    from vitcore.api import load_dict, train

    started = time.perf_counter()
    result = train(load_dict(base_spec(model, out, per_class, epochs, calibration), base_dir=ROOT / "examples"))
    print(f"trained {result.run_dir} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return Path(result.run_dir)


def make_variants(source: Path, heads: float, mlp: float, epochs: int, distill: bool, criterion: str,
                  batches: int) -> dict[str, Any]:
    """The pruned versions: before fine-tuning, fine-tuned, fine-tuned with distillation."""
    from vitcore.api import VitcoreError
    from vitcore_prune.command import prune_run

    made: dict[str, Any] = {}
    for label, finetune, extra in (("pruned", 0, []), ("pruned_ft", epochs, []),
                                   ("distilled", epochs, [f"distill.teacher={source}"] if distill else None)):
        if extra is None:
            continue
        started = time.perf_counter()
        try:
            result = prune_run(source, heads, mlp, finetune, criterion, batches, overrides=extra)
        except VitcoreError as exc:  # e.g. the engine without distillation yet
            made[label] = {"error": str(exc)}
            print(f"{label}: not made: {exc}", file=sys.stderr, flush=True)
            continue
        made[label] = {"run_dir": str(result["run_dir"]), "pruning": result["pruning"],
                       "seconds": round(time.perf_counter() - started, 1)}
        print(f"{label}: {result['run_dir']} in {made[label]['seconds']} s", file=sys.stderr, flush=True)
    return made


def rows_to_measure(source: Path, made: dict[str, Any]) -> list[tuple[str, Path, str]]:
    """(label, run folder, ONNX file) for every variant whose file exists."""
    rows = [("fp32", source, "model.onnx"), ("dynamic int8", source, "model.int8.onnx"),
            ("static int8", source, "model.int8.static.onnx")]
    labels = {"pruned": "pruned, before fine-tuning", "pruned_ft": "pruned, fine-tuned", "distilled":
              "pruned, fine-tuned with distillation"}
    for key, label in labels.items():
        if "run_dir" not in made.get(key, {}):
            continue
        run_dir = Path(made[key]["run_dir"])
        rows.append((label, run_dir, "model.onnx"))
        if key != "pruned":  # dynamic int8 of the fp32 model shows what it is worth; static only here
            rows.append((f"{label} + static int8", run_dir, "model.int8.static.onnx"))
    return [(label, run_dir, name) for label, run_dir, name in rows if (run_dir / "exports" / name).is_file()]


def session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session with ``threads`` intra-op threads (0: onnxruntime's default)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(rows: list[tuple[str, Path, str]], source: Path, seconds: float, threads: int,
            rounds: int, min_repeats: int) -> list[dict[str, Any]]:
    import os

    import numpy as np

    from vitcore_export_onnx import measure as timing_rules

    from vitcore.api import load_run_model, read_json
    from vitcore_export_onnx.measure import ValidationImages, latencies
    from vitcore_export_onnx.quantize import _size
    from vitcore_export_onnx.verify import run

    pre = load_run_model(source).preprocessing
    val = ValidationImages.of_spec(read_json(source / "spec.json"), pre)
    sessions = {label: session(run_dir / "exports" / name, threads) for label, run_dir, name in rows}
    top: dict[str, list[np.ndarray]] = {label: [] for label in sessions}
    labels: list[int] = []
    for images, chunk_labels in val.chunks():
        labels += chunk_labels
        for label, sess in sessions.items():
            top[label].append(run(sess, images).argmax(1))
    truth = np.asarray(labels)
    tops = {label: np.concatenate(parts) for label, parts in top.items()}
    sample, _ = val.sample(32)
    timing_rules.ROUNDS, timing_rules.MIN_REPEATS = rounds, min_repeats
    load_before = os.getloadavg()[0]
    timing = latencies(sessions, sample, [1, 32], seconds)
    load_after = os.getloadavg()[0]
    out = []
    for label, run_dir, name in rows:
        summary = read_json(run_dir / "summary.json")
        out.append({
            "variant": label, "run": f"{run_dir.parent.name}/{run_dir.name}", "file": name,
            "parameters": summary.get("parameters"), "flops_per_image": summary.get("flops_per_image"),
            "bytes": _size(run_dir / "exports" / name),
            "ms_batch_1": timing[label]["1"]["ms_per_batch"], "ms_batch_32": timing[label]["32"]["ms_per_batch"],
            "val_top1": float((tops[label] == truth).mean()),
            "agreement_with_fp32": float((tops[label] == tops["fp32"]).mean()),
            "val_images": int(len(truth)), "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        })
    base = out[0]
    for row in out:
        row["speedup_batch_1"] = round(base["ms_batch_1"] / row["ms_batch_1"], 3)
        row["speedup_batch_32"] = round(base["ms_batch_32"] / row["ms_batch_32"], 3)
        row["top1_change_points"] = round(100 * (row["val_top1"] - base["val_top1"]), 2)
        row["meets_target"] = row["speedup_batch_1"] >= 1.5 and row["top1_change_points"] >= -2
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | params | GFLOPs/img | ONNX MB | ms @1 | ms @32 | speed-up @1 / @32 | val top-1 | "
             "agreement w/ fp32 |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        flops = f"{r['flops_per_image'] / 1e9:.3f}" if r["flops_per_image"] else "-"
        lines.append(f"| {r['variant']} | {r['parameters']:,} | {flops} | {r['bytes'] / 2**20:.2f} | "
                     f"{r['ms_batch_1']:.2f} | {r['ms_batch_32']:.1f} | {r['speedup_batch_1']:.2f}x / "
                     f"{r['speedup_batch_32']:.2f}x | {100 * r['val_top1']:.1f}% | {100 * r['agreement_with_fp32']:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["quickstart", "vit_s16"], required=True)
    parser.add_argument("--out", type=Path, required=True, help="Folder for the runs and the JSON result.")
    parser.add_argument("--source", type=Path, help="Reuse this trained fp32 run instead of training one.")
    parser.add_argument("--reuse-variants", action="store_true",
                        help="With --source: measure its existing v2.. versions instead of pruning again.")
    parser.add_argument("--heads", type=float, default=0.25)
    parser.add_argument("--mlp", type=float, default=0.5)
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="Fine-tuning epochs of the pruned models (default: 3 quickstart, 1 vit_s16).")
    parser.add_argument("--no-distill", action="store_true", help="Skip the distilled student.")
    parser.add_argument("--seconds", type=float, default=1.0, help="Timing per file, batch size and round.")
    parser.add_argument("--train-per-class", type=int, help="Source training images per class (default: "
                        + ", ".join(f"{m} {n}" for m, (n, _) in SIZING.items()) + ").")
    parser.add_argument("--epochs", type=int, help="Source training epochs (default: "
                        + ", ".join(f"{m} {e}" for m, (_, e) in SIZING.items()) + ").")
    parser.add_argument("--train-threads", type=int, default=1, help="torch threads for training and pruning.")
    parser.add_argument("--ort-threads", type=int, default=1,
                        help="onnxruntime intra-op threads for the timing (0: its default, one per core).")
    parser.add_argument("--criterion", choices=["taylor", "magnitude"], help="vitcore prune --criterion "
                        "(default: taylor on 8 batches for the quickstart, magnitude for vit_s16: no training passes).")
    parser.add_argument("--calibration-images", type=int, help="The exports' static int8 calibration images "
                        "(default: 64 quickstart, 16 vit_s16).")
    parser.add_argument("--rounds", type=int, help="Interleaved timing rounds (default 3; 2 for vit_s16).")
    parser.add_argument("--min-repeats", type=int, help="Calls per file, batch size and round at least "
                        "(default 3; 1 for vit_s16, whose batch of 32 takes seconds).")
    parser.add_argument("--no-measure", action="store_true",
                        help="Train and prune only; measure later with --source RUN --reuse-variants.")
    args = parser.parse_args(argv)
    if args.finetune_epochs is None:
        args.finetune_epochs = 3 if args.model == "quickstart" else 1
    per_class, epochs = SIZING[args.model]
    args.train_per_class = args.train_per_class or per_class
    args.epochs = args.epochs or epochs
    small = args.model == "quickstart"
    args.criterion = args.criterion or ("taylor" if small else "magnitude")
    args.calibration_images = args.calibration_images or (64 if small else 16)
    args.rounds = args.rounds or (3 if small else 2)
    args.min_repeats = args.min_repeats or (3 if small else 1)

    import os

    import onnxruntime
    import torch

    from vitcore.api import read_json

    torch.set_num_threads(args.train_threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source = (args.source.absolute() if args.source
              else train_source(args.model, args.out, args.train_per_class, args.epochs, args.calibration_images))
    if args.reuse_variants:
        found = sorted((p for p in source.parent.iterdir() if p.name.startswith("v") and p != source),
                       key=lambda p: int(p.name[1:]))
        made = {key: {"run_dir": str(p)} for key, p in zip(("pruned", "pruned_ft", "distilled"), found)}
    else:
        made = make_variants(source, args.heads, args.mlp, args.finetune_epochs, not args.no_distill,
                             args.criterion, 8)
    if args.no_measure:
        print(f"made {source} and {len(made)} variants in {time.perf_counter() - started:.0f} s; measure with "
              f"--source {source} --reuse-variants", file=sys.stderr)
        return 0
    rows = measure(rows_to_measure(source, made), source, args.seconds, args.ort_threads, args.rounds,
                   args.min_repeats)
    result = {"model": args.model, "source": str(source), "variants": made, "rows": rows,
              "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                          "onnxruntime": onnxruntime.__version__},
              "settings": {"heads": args.heads, "mlp": args.mlp, "finetune_epochs": args.finetune_epochs,
                           "seconds": args.seconds, "train_threads": args.train_threads, "criterion": args.criterion,
                           "calibration_images": args.calibration_images, "rounds": args.rounds,
                           "min_repeats": args.min_repeats,
                           "ort_threads": args.ort_threads},
              "source_training": {k: read_json(source / "spec.json")[s][k] for s, k in (
                  ("data", "train_per_class"), ("data", "val_per_class"), ("train", "epochs"))},
              "wall_seconds": round(time.perf_counter() - started, 1)}
    (args.out / f"{args.model}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    met = [r["variant"] for r in rows if r["meets_target"]]
    print(f"\n>= 1.5x faster at batch 1 and within 2 points of fp32's top-1: {', '.join(met) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
