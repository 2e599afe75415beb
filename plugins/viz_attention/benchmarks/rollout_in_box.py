"""Acceptance: on a ViT trained on ``shapes``, attention rollout concentrates inside the shape's
bounding box; on the same architecture freshly initialised it does not.

Ratio = rollout mass inside the box / the box's share of the image, averaged over the run's
validation set (boxes from the data set's boxes.json). 1 means no preference for the box.

    .venv/bin/python plugins/viz_attention/benchmarks/rollout_in_box.py runs/quickstart/v2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from vitcore_viz_attention.boxes import (
    fresh_model,
    rollout_box_ratios,
    validation_boxes,
)

from vitcore.api import load_run_model, read_json, resolve_run_dir

SETTINGS = (("mean", 0.0), ("max", 0.0), ("min", 0.0), ("mean", 0.9), ("max", 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default="runs/quickstart/v2", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="Validation images to use (default all).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the untrained weights.")
    args = parser.parse_args()

    torch.set_num_threads(2)
    run_dir = resolve_run_dir(args.run_dir)
    spec = read_json(run_dir / "spec.json")
    loaded = load_run_model(run_dir)
    items = validation_boxes(spec["data"], loaded.preprocessing, args.limit, spec["train"]["seed"])
    models = {"trained": loaded.model, "untrained": fresh_model(spec["model"], loaded.classes, args.seed)}
    share = statistics.mean(
        (b[2] - b[0]) * (b[3] - b[1]) / loaded.preprocessing.image_size ** 2 for _, b in items)
    print(f"run {run_dir}: {len(items)} validation images, mean box share of the image {share:.3f} "
          f"(a map entirely inside every box would score about {1 / share:.1f})")
    print("ratio: mean +- standard deviation over the images; '> 1': share of images whose ratio exceeds 1")
    print(f"{'fusion':<6} {'discard':>7}  {'trained':>13} {'> 1':>5}  {'untrained':>13} {'> 1':>5}")
    for fusion, discard in SETTINGS:
        started = time.perf_counter()
        cells = []
        for model in models.values():
            ratios = rollout_box_ratios(model, loaded.preprocessing, items, fusion, discard)
            above = sum(r > 1 for r in ratios) / len(ratios)
            cells.append(f"{statistics.mean(ratios):>5.2f} +- {statistics.stdev(ratios):<4.2f} {above:>5.0%}")
        print(f"{fusion:<6} {discard:>7.1f}  {'  '.join(cells)}   ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
