"""vitcore's evaluation transform with PIL and numpy only, from the facts in an ONNX file's metadata.

Same steps and rounding as ``vitcore.builtin.transforms.eval_transform`` + ``DeviceNormalize``: short
side to ``round(image_size / crop_pct)`` (long side truncated, as torchvision does), antialiased
resampling, centre crop with rounded offsets, then ``(pixel - 255 * mean) / (255 * std)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from vitcore.api import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    from PIL import Image

#: vitcore's interpolation names (those torchvision resizes tensors with) -> PIL filters. "nearest" is
#: torchvision's legacy nearest (source pixel floor(i * in / out)), which PIL lacks: done with numpy.
FILTERS = {"nearest-exact": "NEAREST", "bilinear": "BILINEAR", "bicubic": "BICUBIC"}


def resize_and_crop(image: "Image.Image", size: int, crop_pct: float, interpolation: str) -> "Image.Image":
    """Short side to ``round(size / crop_pct)``, then the centre ``size`` x ``size`` square."""
    import numpy as np
    from PIL import Image

    if interpolation not in FILTERS and interpolation != "nearest":
        raise VitcoreError(f"interpolation {interpolation!r} in the model's metadata is not one of "
                           f"{sorted([*FILTERS, 'nearest'])}")
    short = round(size / crop_pct)
    width, height = image.size
    new = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
    if new != image.size and interpolation == "nearest":
        rows = np.floor(np.arange(new[1]) * (height / new[1])).astype(int)
        cols = np.floor(np.arange(new[0]) * (width / new[0])).astype(int)
        image = Image.fromarray(np.asarray(image)[rows][:, cols])
    elif new != image.size:
        image = image.resize(new, getattr(Image.Resampling, FILTERS[interpolation]))
    left, top = round((new[0] - size) / 2.0), round((new[1] - size) / 2.0)
    return image.crop((left, top, left + size, top + size))


def prepare(path: Path, facts: Mapping[str, Any]) -> "np.ndarray":
    """One image file -> normalised float32 ``(3, size, size)``."""
    import numpy as np

    from vitcore.api import load_rgb

    image = resize_and_crop(load_rgb(path), int(facts["image_size"]), float(facts["crop_pct"]),
                            str(facts["interpolation"]))
    pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
    mean = np.asarray(facts["mean"], dtype=np.float32).reshape(3, 1, 1) * 255
    inv_std = 1 / (np.asarray(facts["std"], dtype=np.float32).reshape(3, 1, 1) * 255)
    return (pixels - mean) * inv_std
