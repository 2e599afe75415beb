"""The dashboard's two speed promises, measured on a real `vitcore dashboard` child process:

1. ``GET /api/runs`` with 1,000 run versions under ROOT answers in under a second;
2. following a metrics.jsonl of 100,000 records costs each poll only the records written since
   the previous one (the answer's ``bytes_read`` is the appended bytes, read to index them and
   read again to answer; a full re-read of the file is timed beside it for scale).

    python benchmarks/dashboard.py [--runs 1000] [--records 100000] [--polls 20] [--append 10]

Prints one JSON object (the figures benchmarks/RESULTS.md records, with the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def machine() -> dict[str, object]:
    model = platform.processor() or platform.machine()
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        model = found.group(1).strip() if found else model
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "system": platform.platform()}


def make_root(root: Path, versions: int) -> None:
    """``versions`` run versions: names of 10 versions each, a fifth of them trials of sweeps."""
    spec = {"name": "x", "data": {"type": "imagefolder", "root": "data/flowers", "val_fraction": 0.2},
            "model": {"type": "torchvision_vit", "arch": "vit_b_16", "image_size": 224, "patch_size": 16},
            "augmentations": [{"type": "random_resized_crop"}, {"type": "horizontal_flip"}, {"type": "mixup"}],
            "train": {"epochs": 30, "batch_size": 256, "lr": 0.0005, "precision": "bf16", "compile": True,
                      "weight_decay": 0.05, "warmup_epochs": 5, "seed": 0, "num_workers": 8},
            "sinks": [{"type": "jsonl"}, {"type": "tensorboard"}], "exporters": [{"type": "safetensors"}]}
    statuses = ["completed", "running", "failed", "interrupted", "diverged", "pruned", "early_stopped"]
    for index in range(versions):
        if index % 5 == 0:
            folder = root / f"sweep-{index // 50}" / f"trial-{index % 50}" / "v1"
            sweep = {"name": f"sweep-{index // 50}", "trial": index % 50, "params": {"train.lr": 0.001}}
        else:
            folder = root / f"run-{index // 10:03d}" / f"v{index % 10 + 1}"
            sweep = None
        folder.mkdir(parents=True)
        summary = {"name": folder.parent.name, "version": folder.name, "status": statuses[index % len(statuses)],
                   "classes": [f"class-{i}" for i in range(10)], "parameters": 85_806_346, "device": "cuda:0",
                   "precision": "bf16", "best_metric": "val_acc1", "best_value": 0.5 + (index % 50) / 100,
                   "best_epoch": 12, "epochs_completed": index % 30, "steps": 1000 * (index % 30),
                   "images_per_sec": 2500.0 + index, "started": "2026-12-01T10:00:00+00:00", "wall_time_s": 3600.0}
        if sweep:
            summary["sweep"] = sweep
        (folder / "summary.json").write_text(json.dumps(summary, indent=2))
        (folder / "spec.json").write_text(json.dumps({**spec, "name": folder.parent.name}, indent=2))
        if index % 10 == 0:
            (folder / "tags.json").write_text(json.dumps({"tags": ["production"]}))


def record(step: int) -> str:
    entry = {"event": "train", "epoch": step // 1000 + 1, "step": step, "loss": 1.0 / (1 + step / 1000),
             "acc": min(1.0, step / 100_000), "lr": 0.0005, "images_per_sec": 2543.21, "time": 1.8e9 + step}
    text = json.dumps(entry) + "\n"
    if step % 1000 == 0:
        epoch = {"event": "epoch", "epoch": step // 1000, "step": step, "train_loss": 0.5, "val_loss": 0.6,
                 "val_acc1": 0.8, "confusion": [[9, 1], [2, 8]], "epoch_time": 60.0, "time": 1.8e9 + step}
        text += json.dumps(epoch) + "\n"
    return text


def start(root: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "vitcore", "dashboard", str(root), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        found = re.search(r"on (http://\S+/) ", line)
        if found:
            return process, found.group(1)
    raise SystemExit("the dashboard did not start")


def get(url: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - began, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="run versions under ROOT")
    parser.add_argument("--records", type=int, default=100_000, help="records in the followed metrics.jsonl")
    parser.add_argument("--polls", type=int, default=20, help="polls timed while records are appended")
    parser.add_argument("--append", type=int, default=10, help="records appended before each poll")
    parser.add_argument("--repeats", type=int, default=10, help="timed warm requests of /api/runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vitcore-dashboard-bench-") as tmp:
        root = Path(tmp) / "runs"
        make_root(root, args.runs)
        metrics = root / "run-000" / "v2" / "metrics.jsonl"
        with open(metrics, "w") as handle:
            for step in range(1, args.records + 1):
                handle.write(record(step))
        process, url = start(root)
        try:
            cold, body = get(url + "api/runs")
            count, runs_bytes = json.loads(body)["count"], len(body)
            warm = [get(url + "api/runs")[0] for _ in range(args.repeats)]
            filtered = get(url + "api/runs?tag=production")[0]

            follow = url + "api/runs/run-000/v2/metrics"
            began = time.perf_counter()
            after, total, pages = None, 0, 0
            while True:
                answer = json.loads(get(follow + ("" if after is None else f"?after={after}"))[1])
                total += len(answer["records"])
                pages += 1
                after = answer["records"][-1]["step"] if answer["records"] else after
                if not answer["more"]:
                    break
            first_full = time.perf_counter() - began
            last_step = answer["last_step"]
            polls, read, appended, returned = [], [], [], []
            step = args.records
            for _ in range(args.polls):
                text = "".join(record(s) for s in range(step + 1, step + 1 + args.append))
                step += args.append
                with open(metrics, "a") as handle:
                    handle.write(text)
                seconds, body = get(f"{follow}?after={last_step}")
                answer = json.loads(body)
                last_step = answer["last_step"]
                polls.append(seconds)
                read.append(answer["bytes_read"])
                appended.append(len(text.encode()))
                returned.append(len(answer["records"]))
            began = time.perf_counter()
            lines = [json.loads(line) for line in metrics.read_text().splitlines()]
            naive = time.perf_counter() - began
            file_mib = metrics.stat().st_size / 2**20
        finally:
            process.terminate()
            process.wait(30)

    print(json.dumps({
        "machine": machine(),
        "runs": {"versions": count, "cold_s": round(cold, 4), "warm_median_s": round(statistics.median(warm), 4),
                 "warm_max_s": round(max(warm), 4), "tag_filter_s": round(filtered, 4), "answer_bytes": runs_bytes},
        "metrics": {"records_in_file": len(lines), "file_mib": round(file_mib, 2),
                    "first_full_read_s": round(first_full, 3), "first_full_pages": pages, "first_full_records": total,
                    "poll_median_s": round(statistics.median(polls), 4), "poll_max_s": round(max(polls), 4),
                    "records_per_poll": statistics.median(returned),
                    "bytes_read_per_poll": statistics.median(read), "bytes_appended_per_poll": statistics.median(appended),
                    "polls_reading_only_new_bytes": sum(r == 2 * a for r, a in zip(read, appended)),
                    "polls": len(polls), "naive_full_reparse_s": round(naive, 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
