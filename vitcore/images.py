"""Reading images from disk: every mode comes back as RGB, and bad files are found before training.

PIL and numpy are imported inside the functions: plugin registration imports this module and
must stay cheap.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Iterable

from vitcore.errors import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image

#: File name endings (lower case) the folder and manifest providers treat as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)

_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def is_image_file(path: str | os.PathLike) -> bool:
    """True for files with an image extension that are not hidden (e.g. macOS ``._x.jpg`` forks)."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def load_rgb(path: str | os.PathLike) -> "Image.Image":
    """Decode ``path`` fully and return an RGB image.

    Transparency is composited onto white, 16-bit and float greys are scaled (PIL would clip
    them to white) and the EXIF orientation is applied, so every file looks as a viewer shows it.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except FileNotFoundError:
        raise VitcoreError(f"image file {os.fspath(path)} does not exist") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise VitcoreError(
            f"cannot decode image {os.fspath(path)}: {exc}. Remove or replace it."
        ) from None


def _to_rgb(image: "Image.Image") -> "Image.Image":
    from PIL import Image

    if image.mode in _HIGH_DEPTH_MODES:
        image = _scale_to_8bit(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _scale_to_8bit(image: "Image.Image") -> "Image.Image":
    """Map 16-bit/32-bit/float grey to 8 bits: 16-bit modes by their full range, others by 255 or 65535."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
    scaled = np.clip(pixels * (255.0 / top), 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _problem(path: str) -> str | None:
    """Why ``path`` cannot be used, or None. Opening parses the header; ``verify`` checks PNG
    chunks and CRCs; JPEG has no verify, so it is decoded at 1/8 scale, which still reads all data."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
            else:
                image.verify()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
        return f"{type(exc).__name__}: {exc}"
    return None


def find_bad_images(paths: Iterable[str | os.PathLike]) -> list[tuple[str, str]]:
    """``(path, reason)`` for each file PIL cannot open or verify, in input order.

    Run at load time so providers can drop bad files with one warning instead of a crash mid-epoch.
    """
    paths = [os.fspath(p) for p in paths]
    workers = min(8, (os.cpu_count() or 1) + 2)  # file reads release the GIL
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(_problem, paths, chunksize=64))
    return [(path, reason) for path, reason in zip(paths, reasons) if reason is not None]


def bad_images_message(bad: list[tuple[str, str]], where: str, shown: int = 5) -> str:
    """One warning text for ``bad`` files: the count and the first few paths with reasons."""
    listed = "; ".join(f"{path} ({reason})" for path, reason in bad[:shown])
    more = f"; and {len(bad) - shown} more" if len(bad) > shown else ""
    return (
        f"skipping {len(bad)} unreadable image file(s) in {where}: {listed}{more}. "
        "Remove or replace them to silence this warning."
    )
