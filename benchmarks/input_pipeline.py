"""Input pipeline: images/second from a JPEG ImageFolder through decode, augmentation and
collation (the engine's own loaders), to set against the training step's rate.

Each decode mode of ``build_loaders`` is timed on the same files: ``loader`` (PIL in the
workers), ``cache`` (decoded once into a uint8 memory map; the build is timed separately) and
``device`` (JPEG batches decoded on the device, transforms there too). Every mode runs one
untimed pass first (page cache, worker start-up, nvJPEG set-up), then one timed pass whose
batches are moved to the device, as the trainer does. ``--augment device`` (or ``all``) also times
each mode with ``train.augment: device``: the loader only cuts the square, and the random crop and
flip run batched on the device (inside the timed pass, as in the trainer's step).

    python benchmarks/input_pipeline.py --images 512 --size 224 --workers 0 --decode all --augment all

With ``--model`` (a benchmark model of vitcore.engine.harness, e.g. vit_b16) each mode also feeds
the engine's real training step, timed against the same step on synthetic batches already on the
device: ``fed_vs_synthetic`` near 1 means the pipeline keeps the device busy (the target on CUDA is
at least 0.9 for ViT-B/16).

    python benchmarks/input_pipeline.py --model vit_b16 --images 4096 --workers 12 --precision bf16 --compile
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, timed  # noqa: E402

MODES = ("loader", "cache", "device")


def write_jpegs(root: Path, count: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size + 32, size + 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def one_pass(loader, device, augment=None) -> tuple[int, float]:
    """(images, seconds) of one pass, batches moved to ``device`` (and through ``augment``, a
    ``DeviceAugment``, if given) and the device synchronised."""
    seen = 0

    def run() -> None:
        nonlocal seen
        for images, _ in loader:
            images = images.to(device, non_blocking=True) if augment is None else augment.augment(images)
            seen += images.shape[0]

    elapsed = timed(run, device)
    return seen, elapsed


def fed_training(setup, loader, device, prepare=None) -> dict:
    """The engine's training step fed by ``loader`` (batches through ``prepare``, by default the
    plain normalisation), against the same step on synthetic batches."""
    from vitcore.engine.harness import engine_epoch

    steps = len(loader)
    prepare = setup.normalize if prepare is None else prepare
    train = lambda: setup.train_epoch(loader, steps, prepare)  # noqa: E731
    train()  # warm-up (and compilation)
    engine_epoch(setup, steps)
    fed = timed(train, device)
    synthetic = timed(lambda: engine_epoch(setup, steps), device)
    images = steps * setup.batches[0][0].shape[0]
    return {"fed_train_images_per_sec": round(images / fed, 1),
            "synthetic_train_images_per_sec": round(images / synthetic, 1),
            "fed_vs_synthetic": round(synthetic / fed, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--decode", choices=(*MODES, "all"), default="all")
    parser.add_argument("--augment", choices=("loader", "device", "all"), default="loader",
                        help="where the random crop and flip run (train.augment); all: both")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--model", help="also feed this model's training step (sets --size to its input)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    setup = None
    if args.model:
        from vitcore.engine.harness import MODELS, make_setup

        if args.model not in MODELS:
            parser.error(f"--model: unknown {args.model}; choose from {', '.join(sorted(MODELS))}")
        args.size = MODELS[args.model]["image_size"]
        setup = make_setup(args.model, args.batch, 10 * args.images, args.precision, args.compile, args.device)

    import warnings

    import torch

    from vitcore.builtin.datasets import load_image_folder
    from vitcore.builtin.transforms import HorizontalFlip, RandomResizedCrop
    from vitcore.components import AugmentationContext, Preprocessing
    from vitcore.engine.data import build_loaders
    from vitcore.engine.device_augment import DeviceAugment, device_steps, loader_transform
    from vitcore.engine.distributed import DistInfo
    from vitcore.engine.transforms import train_transform

    warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
    name = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    device = torch.device(name)
    modes = MODES if args.decode == "all" else (args.decode,)
    augments = ("loader", "device") if args.augment == "all" else (args.augment,)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_jpegs(root, args.images, args.size)
        splits = load_image_folder(root, val_fraction=0.05, split_seed=0, check_images=False)
        pre = Preprocessing(args.size)
        ctx = AugmentationContext(pre, num_classes=4)
        augmentations = [RandomResizedCrop(), HorizontalFlip()]
        transform = train_transform(augmentations, ctx)
        for mode in modes:
            for augment in augments:
                on_device = augment == "device"
                train_tf = loader_transform(mode, pre) if on_device else transform
                start = time.perf_counter()
                loaders = build_loaders(splits.train, splits.val, train_tf, transform, args.batch, DistInfo(),
                                        device, 0, args.workers, decode=mode, cache_root=Path(tmp) / "cache",
                                        preprocessing=pre)
                build_s = time.perf_counter() - start
                prepare = None
                if on_device:
                    normalize = setup.normalize if setup is not None else None
                    prepare = DeviceAugment(device_steps(augmentations, ctx), pre, normalize, device)
                one_pass(loaders.train, device, prepare)  # warm-up: page cache, workers, decoder set-up
                seen, elapsed = one_pass(loaders.train, device, prepare)
                key = mode if len(augments) == 1 and not on_device else f"{mode}+augment_{augment}"
                results[key] = {"images_per_sec": round(seen / elapsed, 1)}
                if setup is not None:
                    results[key].update(fed_training(setup, loaders.train, device, prepare))
                if mode == "cache" and augment == augments[0]:  # later passes reuse the cache
                    results[key].update(build_s=round(build_s, 2),
                                        build_images_per_sec=round((len(splits.train) + len(splits.val)) / build_s, 1))
                # At once, on stderr: a GPU lease that ends during a later mode keeps this one's figures.
                print(json.dumps({key: results[key]}), file=sys.stderr, flush=True)
    print(json.dumps({"images": seen, "size": args.size, "batch": args.batch, "workers": args.workers,
                      "augment": args.augment, "device": str(device), "model": args.model, "modes": results, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
