"""Lightweight variants of one model side by side on this machine's CPU.

For the quickstart model (examples/quickstart.json) or a ViT-S/16-sized one at 224 px trained
briefly on 224-px shapes: the fp32 run, its dynamic and static int8 ONNX files, the run pruned by
``vitcore prune`` before and after fine-tuning (and its int8 files), and a pruned student
fine-tuned with distillation from the fp32 run (``distill`` section) when the engine has it.
Every row: parameters, FLOPs per image, ONNX file size, onnxruntime latency at batch 1 and 32
(all files timed interleaved in one process, lowest of 3 rounds' medians), top-1 on the whole
validation split and top-1 agreement with the fp32 file.

    python benchmarks/lightweight.py --model quickstart --out /tmp/lw
    python benchmarks/lightweight.py --model vit_s16 --out /tmp/lw --finetune-epochs 1
    python benchmarks/lightweight.py --model quickstart --out /tmp/lw --source /tmp/lw/quickstart/v1  # reuse

Prints a markdown table and writes ``<out>/<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ONNX = {"type": "onnx", "latency_seconds": 0.25}

VIT_S16 = {
    "name": "lightweight_vit_s16",
    "data": {"type": "shapes", "train_per_class": 80, "val_per_class": 40, "image_size": 224,
             "min_size_fraction": 0.4},
    "model": {"type": "torchvision_vit", "image_size": 224, "patch_size": 16, "depth": 12, "embed_dim": 384,
              "num_heads": 6},
    "augmentations": [{"type": "horizontal_flip"}],
    "train": {"epochs": 3, "batch_size": 32, "lr": 5e-4, "warmup_epochs": 1, "weight_decay": 0.05},
}


def base_spec(model: str, out: Path) -> dict[str, Any]:
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text()) if model == "quickstart" else dict(VIT_S16)
    spec = json.loads(json.dumps(spec))
    spec.update(output_dir=str(out), sinks=[{"type": "jsonl"}], visualizers=[], exporters=[dict(ONNX)])
    return spec


def train_source(model: str, out: Path) -> Path:
    from vitcore.api import load_dict, train

    started = time.perf_counter()
    result = train(load_dict(base_spec(model, out), base_dir=ROOT / "examples"))
    print(f"trained {result.run_dir} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return Path(result.run_dir)


def make_variants(source: Path, heads: float, mlp: float, epochs: int, distill: bool) -> dict[str, Any]:
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
            result = prune_run(source, heads, mlp, finetune, overrides=extra)
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
        if key != "pruned":
            rows += [(f"{label} + dynamic int8", run_dir, "model.int8.onnx"),
                     (f"{label} + static int8", run_dir, "model.int8.static.onnx")]
    return [(label, run_dir, name) for label, run_dir, name in rows if (run_dir / "exports" / name).is_file()]


def measure(rows: list[tuple[str, Path, str]], source: Path, seconds: float) -> list[dict[str, Any]]:
    import numpy as np

    from vitcore.api import load_run_model, read_json
    from vitcore_export_onnx.measure import ValidationImages, latencies
    from vitcore_export_onnx.quantize import _size
    from vitcore_export_onnx.verify import run, session

    pre = load_run_model(source).preprocessing
    val = ValidationImages.of_spec(read_json(source / "spec.json"), pre)
    sessions = {label: session(run_dir / "exports" / name) for label, run_dir, name in rows}
    top: dict[str, list[np.ndarray]] = {label: [] for label in sessions}
    labels: list[int] = []
    for images, chunk_labels in val.chunks():
        labels += chunk_labels
        for label, sess in sessions.items():
            top[label].append(run(sess, images).argmax(1))
    truth = np.asarray(labels)
    tops = {label: np.concatenate(parts) for label, parts in top.items()}
    sample, _ = val.sample(32)
    timing = latencies(sessions, sample, [1, 32], seconds)
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
            "val_images": int(len(truth)),
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
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--no-distill", action="store_true", help="Skip the distilled student.")
    parser.add_argument("--seconds", type=float, default=1.0, help="Timing per file, batch size and round.")
    args = parser.parse_args(argv)

    import platform

    import onnxruntime
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    source = args.source or train_source(args.model, args.out)
    if args.reuse_variants:
        found = sorted((p for p in source.parent.iterdir() if p.name.startswith("v") and p != source),
                       key=lambda p: int(p.name[1:]))
        made = {key: {"run_dir": str(p)} for key, p in zip(("pruned", "pruned_ft", "distilled"), found)}
    else:
        made = make_variants(source, args.heads, args.mlp, args.finetune_epochs, not args.no_distill)
    rows = measure(rows_to_measure(source, made), source, args.seconds)
    result = {"model": args.model, "source": str(source), "variants": made, "rows": rows,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": torch.get_num_threads(),
                          "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
              "settings": {"heads": args.heads, "mlp": args.mlp, "finetune_epochs": args.finetune_epochs,
                           "seconds": args.seconds}}
    (args.out / f"{args.model}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    met = [r["variant"] for r in rows if r["meets_target"]]
    print(f"\n>= 1.5x faster at batch 1 and within 2 points of fp32's top-1: {', '.join(met) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
