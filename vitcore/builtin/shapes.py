"""The ``shapes`` data set: procedurally drawn shapes, written once as a real image folder.

Each image is a noisy background in a random colour with one shape in a contrasting colour, at a
random size, position (fully inside) and rotation. The files are generated into a temporary
sibling folder and renamed into place when complete, so an interrupted generation is never
mistaken for a data set; later loads reuse the folder when its ``meta.json`` matches. Loading
then goes through the ``imagefolder`` code path, so training reads decoded PNGs like any data.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from vitcore import hookimpl
from vitcore.atomic import locked
from vitcore.builtin.datasets import load_image_folder, resolve
from vitcore.components import DataContext, DatasetProvider, DataSplits, Options, SpecPath
from vitcore.errors import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

#: Bumped whenever drawing changes, so caches of older pictures are not reused.
GENERATOR_VERSION = 1
DEFAULT_CLASSES = ("circle", "square", "triangle", "star", "cross")
_SUPERSAMPLE = 4  # the shape mask is drawn this much larger, then box-filtered: smooth edges


def _regular(
    corners: int, start_deg: float, radii: tuple[float, ...] = (1.0,)
) -> list[tuple[float, float]]:
    """Vertices on circles of ``radii`` (cycled), evenly spaced: polygons and stars."""
    count = corners * len(radii)
    return [
        (radii[k % len(radii)] * math.cos(a), radii[k % len(radii)] * math.sin(a))
        for k in range(count)
        for a in [math.radians(start_deg) + 2 * math.pi * k / count]
    ]


def _cross(half_width: float = 0.3) -> list[tuple[float, float]]:
    w, scale = half_width, 1 / math.hypot(1, half_width)  # outermost corners on the unit circle
    outline = [
        (-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w),
        (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w),
    ]
    return [(x * scale, y * scale) for x, y in outline]


#: Outlines within the unit circle; None marks round shapes drawn as ellipses.
SHAPES: dict[str, list[tuple[float, float]] | None] = {
    "circle": None,
    "ring": None,
    "square": _regular(4, 45),
    "triangle": _regular(3, -90),
    "star": _regular(5, -90, (1.0, 0.45)),
    "cross": _cross(),
    "hexagon": _regular(6, 0),
}


class ShapesOptions(Options):
    root: SpecPath | None = Field(
        None, description="Cache folder; default $VITCORE_CACHE/datasets/shapes-<hash of the options>."
    )
    classes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CLASSES), description=f"From: {', '.join(SHAPES)}."
    )
    train_per_class: int = Field(400, ge=1, description="Training images drawn per class.")
    val_per_class: int = Field(100, ge=1, description="Validation images drawn per class.")
    image_size: int = Field(64, ge=16, le=1024, description="Side of the square images, in pixels.")
    seed: int = Field(0, description="Seed of the drawing: the same options give the same files.")
    noise: float = Field(0.1, ge=0, le=1, description="Background noise amplitude, as a fraction of 255.")
    min_size_fraction: float = Field(0.3, gt=0, le=1, description="Smallest shape diameter / image size.")
    max_size_fraction: float = Field(0.7, gt=0, le=1, description="Largest shape diameter / image size.")

    @field_validator("classes")
    @classmethod
    def _known_shapes(cls, classes: list[str]) -> list[str]:
        unknown = [c for c in classes if c not in SHAPES]
        if unknown:
            raise ValueError(f"unknown shape(s) {', '.join(unknown)}; available: {', '.join(SHAPES)}")
        if len(set(classes)) != len(classes):
            raise ValueError("classes must not repeat")
        if len(classes) < 2:
            raise ValueError("a classifier needs at least 2 classes")
        return classes

    @model_validator(mode="after")
    def _size_range(self) -> "ShapesOptions":
        if self.min_size_fraction > self.max_size_fraction:
            raise ValueError("min_size_fraction must not exceed max_size_fraction")
        return self

    def generating(self) -> dict[str, Any]:
        """The options that determine the pictures (all but ``root``), with the generator version."""
        return {"generator_version": GENERATOR_VERSION, **self.model_dump(exclude={"root"})}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.generating(), sort_keys=True).encode()).hexdigest()[:12]


def draw_shape(shape: str, o: ShapesOptions, rng: "np.random.Generator") -> tuple["np.ndarray", list[int]]:
    """One ``(size, size, 3)`` uint8 picture of ``shape`` and its box ``[x0, y0, x1, y1]``.

    The box is in pixels, end-exclusive (``image[y0:y1, x0:x1]`` holds the whole shape).
    Background and shape take each channel from opposite ends of the range (<= 90 vs >= 165),
    so they differ by at least 75 in every channel whatever the hues: the task is about outline.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    size = o.image_size
    dark, light = rng.uniform(0, 90, 3), rng.uniform(165, 255, 3)
    background, colour = (dark, light) if rng.random() < 0.5 else (light, dark)
    radius = rng.uniform(o.min_size_fraction, o.max_size_fraction) * size / 2
    angle = rng.uniform(0, 2 * math.pi)

    outline = SHAPES[shape]
    if outline is None:
        offsets = np.array([[-radius, -radius], [radius, radius]])
    else:
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        offsets = np.asarray(outline) @ rotation.T * radius
    low, high = offsets.min(axis=0), offsets.max(axis=0)
    centre = rng.uniform(-low, size - high)  # keeps the whole shape inside the image
    points = offsets + centre

    ss = _SUPERSAMPLE
    mask = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(mask)
    if outline is None:
        (x0, y0), (x1, y1) = points * ss
        draw.ellipse([x0, y0, x1, y1], fill=255)
        if shape == "ring":
            inset = 0.45 * radius * ss
            draw.ellipse([x0 + inset, y0 + inset, x1 - inset, y1 - inset], fill=0)
    else:
        draw.polygon([tuple(p) for p in points * ss], fill=255)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float32)[..., None] / 255

    pixels = background + rng.uniform(-1, 1, (size, size, 3)) * (o.noise * 255)
    pixels = pixels * (1 - alpha) + colour * alpha
    lo, hi = points.min(axis=0), points.max(axis=0)
    box = [max(0, math.floor(lo[0])), max(0, math.floor(lo[1]))]
    box += [min(size, math.ceil(hi[0])), min(size, math.ceil(hi[1]))]
    return np.clip(pixels, 0, 255).round().astype(np.uint8), box


def generate(folder: Path, o: ShapesOptions) -> None:
    """Write the image folder, ``boxes.json`` and ``meta.json`` (last) into ``folder``.

    Every image has its own generator seeded by (seed, split, shape, index): the same options
    give the same bytes, and changing one count or class leaves the other pictures unchanged.
    """
    import numpy as np
    from PIL import Image

    boxes: dict[str, list[int]] = {}
    for split_index, (split, count) in enumerate((("train", o.train_per_class), ("val", o.val_per_class))):
        for shape in o.classes:
            (folder / split / shape).mkdir(parents=True)
            shape_key = zlib.crc32(shape.encode())
            for i in range(count):
                rng = np.random.default_rng([o.seed, split_index, shape_key, i])
                pixels, box = draw_shape(shape, o, rng)
                relative = f"{split}/{shape}/{i:05d}.png"
                Image.fromarray(pixels, mode="RGB").save(folder / relative, format="PNG", compress_level=1)
                boxes[relative] = box
    boxes_doc = {"image_size": o.image_size, "format": "xyxy, pixels, end-exclusive", "boxes": boxes}
    (folder / "boxes.json").write_text(json.dumps(boxes_doc))
    (folder / "meta.json").write_text(json.dumps(o.generating(), indent=2, sort_keys=True))


def _check_existing(root: Path, o: ShapesOptions) -> None:
    meta = root / "meta.json"
    try:
        matches = json.loads(meta.read_text()) == json.loads(json.dumps(o.generating()))
    except (OSError, ValueError):
        matches = False
    if not matches:
        raise VitcoreError(
            f"{root} exists but is not a shapes data set generated with these options "
            f"({meta} is missing or differs). Delete the folder or choose another 'root'."
        )


def ensure_generated(root: Path, o: ShapesOptions) -> None:
    """Generate into a temporary sibling and rename it to ``root``, unless a matching one exists.

    Processes generating the same folder (a sweep's parallel trials) take turns on a lock beside it:
    the first generates, the others find its result. Where the lock cannot hold (another host on a
    shared disk), the first rename wins and the others check and use its result.
    """
    if root.exists():
        _check_existing(root, o)
        return
    with locked(root):  # another process generating the same folder: wait for it, then use it
        if root.exists():
            _check_existing(root, o)
            return
        partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
        try:
            generate(partial, o)
            try:
                os.replace(partial, root)
            except OSError:
                if not root.exists():
                    raise
                _check_existing(root, o)
        finally:
            shutil.rmtree(partial, ignore_errors=True)


class ShapesDataset(DatasetProvider):
    """Procedurally drawn shapes (circle, square, ...) with bounding boxes; generated once, cached."""

    name = "shapes"
    Options = ShapesOptions

    def root(self, ctx: DataContext) -> Path:
        o = self.options
        if o.root is not None:
            return resolve(o.root, ctx.spec_dir)
        return ctx.cache_dir / "datasets" / f"shapes-{o.digest()}"

    def load(self, ctx: DataContext) -> DataSplits:
        root = self.root(ctx)
        ensure_generated(root, self.options)
        splits = load_image_folder(root, val_fraction=0.2, split_seed=0, check_images=False)
        splits.info.update(boxes_file=str(root / "boxes.json"), root=str(root))
        return splits


@hookimpl
def register_datasets(register) -> None:
    register(ShapesDataset)
