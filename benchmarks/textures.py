"""A second procedural data set for the recipe measurements: textures, not shapes.

``python benchmarks/textures.py OUT [--per-class N] [--val-per-class N] [--size PX]`` writes an
image folder ``OUT/train/<class>/*.png`` and ``OUT/val/<class>/*.png`` that the ``imagefolder``
provider reads. Each picture fills the whole frame with one texture family (stripes, checker,
dots, waves, crosshatch, rings, blobs) at a random scale, orientation, phase and pair of colours,
then blends in a faint texture of another family and pixel noise. The class is a property of the
whole image's statistics rather than of one outline, which is closer to what photos ask of a
model than ``shapes`` is, and it is invariant to flips and rotations, so no augmentation in the
recipes changes a label. The same options give the same bytes (one seeded generator per image).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

CLASSES = ("stripes", "checker", "dots", "waves", "crosshatch", "rings", "blobs")


def _soft(signal: np.ndarray, sharpness: float) -> np.ndarray:
    """A signal around 0 turned into a 0..1 mask with smooth edges."""
    return 0.5 + 0.5 * np.tanh(sharpness * signal)


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size)`` 0..1 mask of texture family ``kind``."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, math.pi)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    freq = rng.uniform(2.5, 7.0)  # cycles per image side
    phase_u, phase_v = rng.uniform(0, 2 * math.pi, 2)
    sharp = rng.uniform(2.0, 8.0)
    makers: dict[str, Callable[[], np.ndarray]] = {
        "stripes": lambda: _soft(np.sin(2 * math.pi * freq * u + phase_u), sharp),
        "checker": lambda: _soft(np.sin(2 * math.pi * freq * u + phase_u) * np.sin(2 * math.pi * freq * v + phase_v), sharp * 2),
        "dots": lambda: _soft(rng.uniform(0.15, 0.35) ** 2
                              - ((freq * u + phase_u / 6.3) % 1 - 0.5) ** 2
                              - ((freq * v + phase_v / 6.3) % 1 - 0.5) ** 2, sharp * 40),
        "waves": lambda: _soft(np.sin(2 * math.pi * freq * u + rng.uniform(1.5, 3.0)
                                      * np.sin(2 * math.pi * rng.uniform(1.0, 2.5) * v + phase_v) + phase_u), sharp),
        "crosshatch": lambda: _soft(rng.uniform(0.25, 0.45)
                                    - np.minimum(np.abs(np.sin(math.pi * freq * u + phase_u)),
                                                 np.abs(np.sin(math.pi * freq * v + phase_v))), sharp * 3),
        "rings": lambda: _soft(np.sin(2 * math.pi * freq
                                      * np.hypot(x - rng.uniform(0.2, 0.8), y - rng.uniform(0.2, 0.8)) + phase_u), sharp),
        "blobs": lambda: _blobs(size, freq, rng, sharp),
    }
    return makers[kind]().astype(np.float32)


def _blobs(size: int, freq: float, rng: np.random.Generator, sharp: float) -> np.ndarray:
    """Low-pass filtered noise, thresholded: irregular blobs about 1/freq of the image across."""
    noise = rng.standard_normal((size, size))
    fy, fx = np.meshgrid(np.fft.fftfreq(size) * size, np.fft.fftfreq(size) * size, indexing="ij")
    smooth = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-(fx ** 2 + fy ** 2) / (2 * (freq * 0.6) ** 2))))
    smooth /= smooth.std() + 1e-6
    return _soft(smooth, sharp / 2)


def draw(kind: str, size: int, rng: np.random.Generator, noise: float = 0.15) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 picture of texture family ``kind``."""
    dark, light = rng.uniform(0, 110, 3), rng.uniform(145, 255, 3)
    background, colour = (dark, light) if rng.random() < 0.5 else (light, dark)
    mask = _texture(kind, size, rng)[..., None]
    pixels = background * (1 - mask) + colour * mask
    other = CLASSES[(CLASSES.index(kind) + 1 + rng.integers(len(CLASSES) - 1)) % len(CLASSES)]
    distractor = _texture(other, size, rng)[..., None]
    pixels = pixels * (1 - 0.3 * distractor) + rng.uniform(0, 255, 3) * 0.3 * distractor * rng.uniform(0.3, 1.0)
    pixels = pixels + rng.uniform(-1, 1, (size, size, 3)) * noise * 255
    return np.clip(pixels, 0, 255).round().astype(np.uint8)


def generate(out: Path, per_class: int, val_per_class: int, size: int, seed: int, noise: float) -> None:
    """Write the image folder and a ``meta.json`` of the options into ``out``."""
    from PIL import Image

    for split_index, (split, count) in enumerate((("train", per_class), ("val", val_per_class))):
        for class_index, kind in enumerate(CLASSES):
            folder = out / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng([seed, split_index, class_index, i])
                Image.fromarray(draw(kind, size, rng, noise), mode="RGB").save(folder / f"{i:05d}.png",
                                                                             compress_level=1)
    meta = {"classes": list(CLASSES), "per_class": per_class, "val_per_class": val_per_class, "size": size,
            "seed": seed, "noise": noise}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="Folder to write (train/ and val/ inside).")
    parser.add_argument("--per-class", type=int, default=300, help="Training images per class.")
    parser.add_argument("--val-per-class", type=int, default=60, help="Validation images per class.")
    parser.add_argument("--size", type=int, default=32, help="Image side in pixels.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.15, help="Pixel noise amplitude, fraction of 255.")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} exists and is not empty; choose a new folder")
    generate(args.out, args.per_class, args.val_per_class, args.size, args.seed, args.noise)
    print(f"wrote {len(CLASSES)} classes x ({args.per_class} train + {args.val_per_class} val) images of "
          f"{args.size} px to {args.out}")


if __name__ == "__main__":
    main()
