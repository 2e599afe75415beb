"""Decoding on the training device: loader workers only read file bytes, the device decodes.

With ``train.decode: device`` the DataLoader workers read each JPEG's bytes (cheap) and the
training process decodes a whole batch with one ``torchvision.io.decode_jpeg(list, device=...)``
call: nvJPEG on CUDA, libjpeg-turbo when the device is the CPU (which is what the tests run).
The per-sample transforms (the same train/eval transforms as in loader mode; torchvision v2
works on tensors on any device) then run on the device, image by image, and the batch is
stacked there. The CPU is left with file reads and, for non-JPEG files, their decoding.

Files are told apart by their first bytes, not their names: ``FF D8 FF`` is JPEG. PNG files
(``89 PNG``) are decoded in the workers with ``torchvision.io.decode_image`` and sent to the
device; every other format (GIF, WebP, BMP, TIFF, PPM) and any file libpng or the device's
decoder refuses is decoded with ``vitcore.images.load_rgb`` on the CPU, so every file
that loads in loader mode loads here.

Compared with ``load_rgb`` (loader mode):

* EXIF orientation is applied as in loader mode: the workers read the orientation tag with PIL
  (header only, no pixel decoding) and the device flips/rotates the decoded image. nvJPEG itself
  ignores the tag.
* JPEG pixels: on the CPU torchvision's libjpeg-turbo and Pillow's decode identically (measured
  in tests/test_decoding.py); nvJPEG's IDCT and chroma upsampling may differ by a level or two,
  and transforms on CUDA resample with CUDA kernels. CMYK/YCCK JPEGs that a decoder refuses fall
  back to PIL; ones it accepts may convert colours slightly differently from PIL.
* PNG transparency (alpha channel or palette ``tRNS``) is composited onto white as in loader
  mode, with float rounding (within 1 level of PIL's integer blend); grey/RGB PNGs with a single
  transparent colour go to ``load_rgb`` (torchvision ignores that kind of ``tRNS``).
* 16-bit PNGs: grey ones are scaled by their full range as ``load_rgb`` does; 16-bit colour ones
  keep the high byte, as PIL does.
* PNG EXIF orientation comes from libpng's ``eXIf`` chunk support rather than PIL's.
* Datasets are read through their ``samples`` paths, not their ``__getitem__``: a dataset whose
  ``__getitem__`` does more than load the file would differ (use 'cache' or 'loader' then).
* Augmentation randomness comes from the training process's torch generator (seeded by the run)
  instead of the workers' generators: the same run seed gives the same data order but other
  random crops than in loader mode. Transforms from plugins must accept tensors on the device.

torchvision 0.29 marks its decoders deprecated in favour of TorchCodec (not a dependency here);
they still work, and the warning is a DeprecationWarning, hidden unless running tests.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from vitcore.images import load_rgb
from vitcore.errors import SpecError, VitcoreError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOT_FILE_BACKED = (
    "train.decode: 'device' needs a file-backed dataset (imagefolder, csv, shapes); use 'cache' or 'loader'"
)


def is_jpeg(data: bytes | torch.Tensor) -> bool:
    """True when the bytes start like a JPEG file (SOI marker and the next marker's FF)."""
    head = bytes(data[:3].tolist()) if isinstance(data, torch.Tensor) else bytes(data[:3])
    return head == JPEG_MAGIC


def samples_of(dataset: Any) -> list[tuple[str, int]]:
    """The ``(path, label)`` pairs of a file-backed dataset, or the clear error of 'device'."""
    samples = getattr(dataset, "samples", None)
    if not isinstance(samples, (list, tuple)) or len(samples) != len(dataset):
        raise SpecError(NOT_FILE_BACKED)
    for item in samples[:1]:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], (str, os.PathLike))):
            raise SpecError(NOT_FILE_BACKED)
    return list(samples)


# --------------------------------------------------------------------------------------------
# In the workers: bytes for JPEGs, pixels for the rest
# --------------------------------------------------------------------------------------------


def exif_orientation(data: bytes) -> int:
    """The EXIF (or XMP) orientation tag, 1-8, read by PIL from the header alone; 1 if absent."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            value = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken header decodes (or fails) later like in loader mode
        return 1
    return value if 1 <= value <= 8 else 1


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation to a ``(C, H, W)`` tensor as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1, -2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return image.rot90(-1, dims=(-2, -1))
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1, -2)
    if orientation == 8:
        return image.rot90(1, dims=(-2, -1))
    return image


def _pil_pixels(path: str) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.array(load_rgb(path))).permute(2, 0, 1).contiguous()


def png_header(data: bytes) -> tuple[int, bool]:
    """``(colour type, has a tRNS chunk)`` of PNG bytes, from the chunks before the image data."""
    colour = data[25] if len(data) > 25 else -1
    offset, trns = 8, False
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if kind == b"tRNS":
            trns = True
        if kind in (b"IDAT", b"IEND"):  # tRNS must come before the image data
            break
        offset += 12 + length
    return colour, trns


class _UsePil(Exception):
    """A PNG variant torchvision decodes differently from load_rgb."""


def decode_png(data: bytes) -> torch.Tensor:
    """PNG bytes -> upright uint8 ``(3, H, W)`` with transparency on white, as ``load_rgb`` gives.

    Raises ``_UsePil`` for grey/RGB PNGs with a single transparent colour (``tRNS``), which
    torchvision ignores; it reads palette ``tRNS`` and alpha channels. Opaque files are decoded
    as RGB: torchvision's RGB_ALPHA mode misreads opaque palette PNGs.
    """
    from torchvision.io import ImageReadMode, decode_image

    colour, trns = png_header(data)
    alpha = colour in (4, 6) or (colour == 3 and trns)
    if colour in (0, 2) and trns:
        raise _UsePil
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    mode = ImageReadMode.RGB_ALPHA if alpha else ImageReadMode.RGB
    pixels = decode_image(encoded, mode=mode, apply_exif_orientation=True)
    if pixels.dtype == torch.uint16:
        wide = pixels.to(torch.int32)
        if colour == 0:  # load_rgb scales 16-bit grey by its full range
            pixels = (wide.float() * (255.0 / 65535.0)).round().to(torch.uint8)
        else:  # PIL keeps the high byte of 16-bit colour and grey+alpha
            pixels = (wide >> 8).to(torch.uint8)
    if not alpha:
        return pixels.contiguous()
    rgb, a = pixels[:3].float(), pixels[3:4].float()
    return ((rgb * a + 255.0 * (255.0 - a)) / 255.0).round().to(torch.uint8)


class EncodedFiles(Dataset):
    """Items for the device decoder: ``(tensor, orientation, path, label)`` per sample.

    JPEGs come as their 1-D uint8 file bytes (decoded later, on the device); other files are
    decoded here, in the worker, to an upright uint8 ``(3, H, W)`` tensor (orientation 1).
    """

    def __init__(self, samples: Sequence[tuple[str, int]]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, int, str, int]:
        if isinstance(index, tuple):  # a training key (epoch, index): draws happen on the device
            index = index[1]
        path, label = self.samples[index]
        path = os.fspath(path)
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise VitcoreError(f"image file {path} does not exist") from None
        if data[:3] == JPEG_MAGIC:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), exif_orientation(data), path, label
        if data[:8] == PNG_MAGIC:
            try:
                return decode_png(data), 1, path, label
            except (RuntimeError, ValueError, _UsePil):  # refused or read differently: PIL reads it
                pass
        return _pil_pixels(path), 1, path, label


class EncodedBatch(list):
    """A batch's images as a list of CPU uint8 tensors: 1-D for JPEG file bytes (to be decoded on
    the device), ``(3, H, W)`` for images a worker decoded already. ``paths`` and
    ``orientations`` line up with the list (for fallbacks, error messages and EXIF)."""

    paths: list[str]
    orientations: list[int]


def collate_encoded(items: list[tuple[torch.Tensor, int, str, int]]) -> tuple[EncodedBatch, torch.Tensor]:
    """``(EncodedBatch, int64 labels)``; the images cannot be stacked before they are decoded."""
    batch = EncodedBatch(item[0] for item in items)
    batch.orientations = [item[1] for item in items]
    batch.paths = [item[2] for item in items]
    return batch, torch.tensor([item[3] for item in items], dtype=torch.int64)


# --------------------------------------------------------------------------------------------
# In the training process: decode a batch on the device
# --------------------------------------------------------------------------------------------


def _decode_jpeg_alone(data: torch.Tensor, path: str, device: torch.device) -> tuple[torch.Tensor, bool]:
    """One JPEG on the device, else with PIL on the CPU; (pixels, already upright)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device), False
    except RuntimeError:
        return _pil_pixels(path).to(device), True


def decode_batch(batch: EncodedBatch, device: torch.device) -> list[torch.Tensor]:
    """Upright uint8 ``(3, H, W)`` images on ``device``: all JPEGs of the batch in one
    ``decode_jpeg`` call (nvJPEG's batched decoder on CUDA), the pre-decoded rest moved over."""
    from torchvision.io import ImageReadMode, decode_jpeg

    images: list[torch.Tensor | None] = [None] * len(batch)
    jpegs = [i for i, item in enumerate(batch) if item.dim() == 1]
    if jpegs:
        try:
            decoded = decode_jpeg([batch[i] for i in jpegs], mode=ImageReadMode.RGB, device=device)
            upright = [False] * len(jpegs)
        except RuntimeError:  # one file the decoder refuses: decode one by one, with fallbacks
            pairs = [_decode_jpeg_alone(batch[i], batch.paths[i], device) for i in jpegs]
            decoded, upright = [p[0] for p in pairs], [p[1] for p in pairs]
        for i, pixels, done in zip(jpegs, decoded, upright):
            images[i] = pixels if done else orient(pixels, batch.orientations[i])
    for i, item in enumerate(batch):
        if images[i] is None:
            images[i] = item.to(device, non_blocking=True)
    return images  # type: ignore[return-value]


class DeviceDecodeLoader:
    """Wraps a DataLoader of ``(EncodedBatch, labels)``: yields ``(uint8 (B, 3, s, s) on device,
    labels)`` after decoding and transforming every image on ``device``.

    Has what the trainer uses of a DataLoader: ``len``, iteration, and the ``sampler``,
    ``batch_sampler`` and ``dataset`` of the wrapped loader.
    """

    def __init__(self, loader: DataLoader, transform: Callable, device: torch.device) -> None:
        self.loader = loader
        self.transform = transform
        self.device = device

    @property
    def dataset(self) -> Dataset:
        return self.loader.dataset

    @property
    def sampler(self) -> Any:
        return self.loader.sampler

    @property
    def batch_sampler(self) -> Any:
        return self.loader.batch_sampler

    @property
    def batch_size(self) -> int | None:
        return self.loader.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch, labels in self.loader:
            images = decode_batch(batch, self.device)
            yield torch.stack([self.transform(image) for image in images]), labels
