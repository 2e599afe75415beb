"""Input pipeline: images/second from a JPEG ImageFolder through decode, augmentation and
collation (the engine's own loader), to set against the training step's rate.

    python benchmarks/input_pipeline.py --images 512 --size 224 --workers 0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402


def write_jpegs(root: Path, count: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size + 32, size + 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()

    import torch

    from vitcore.builtin.datasets import load_image_folder
    from vitcore.builtin.transforms import HorizontalFlip, RandomResizedCrop, train_transform
    from vitcore.components import AugmentationContext, Preprocessing
    from vitcore.engine.data import build_loaders
    from vitcore.engine.distributed import DistInfo

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_jpegs(root, args.images, args.size)
        splits = load_image_folder(root, val_fraction=0.05, split_seed=0, check_images=False)
        ctx = AugmentationContext(Preprocessing(args.size), num_classes=4)
        transform = train_transform([RandomResizedCrop(), HorizontalFlip()], ctx)
        loaders = build_loaders(splits.train, splits.val, transform, transform, args.batch, DistInfo(),
                                torch.device("cpu"), 0, args.workers)
        start, seen = time.perf_counter(), 0
        for images, _ in loaders.train:
            seen += images.shape[0]
        elapsed = time.perf_counter() - start
    print(json.dumps({"images": seen, "size": args.size, "workers": args.workers,
                      "images_per_sec": round(seen / elapsed, 1), "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
