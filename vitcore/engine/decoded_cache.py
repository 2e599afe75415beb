"""A pre-decoded uint8 cache of a split: decode every image once, then train from a memory map.

Decoding JPEGs (and resizing multi-megapixel photos) is usually what starves a GPU, and it is the
same work every epoch. This module does it once per split: each image is decoded through the
dataset itself (so any provider works), its short side resized to
``S = round(image_size / crop_pct)`` (the evaluation resize) and centre-cropped to ``S x S``,
and all of them are stored as one ``(N, S, S, 3)`` uint8 file under ``<root>/decoded/``. Every
later epoch and every later run with the same files reads raw pixels from the page cache.

What differs from decoding in the loader, and why it is acceptable:

* Evaluation pixels are the loader's, bit for bit: the cached square is the loader's short-side
  resize (same torchvision resize on the same uint8 tensor), the eval transform's own resize is
  then a no-op, and the square is placed so that the eval centre crop inside it is the loader's.
* Training crops come from the centre ``S x S`` square, not the whole picture: a random-resized
  crop never sees the ends of the long side of a non-square image. For ImageNet-like photos
  (aspect ~4:3) that drops the outer ~12% on each end, the usual price of a fixed-size cache.
* A random-resized crop upsamples from at most ``S`` pixels instead of the original resolution.

The cache is keyed by what the pixels depend on: for datasets with ``samples`` (``(path, label)``
pairs, as ``ImageSamples``) every path, label, file size and modification time; for others the
dataset's type, repr (without memory addresses), length and the pixels of a few items. Changing,
adding or removing a file gives a new key, hence a new cache; old caches stay until deleted
(``<root>/decoded`` is safe to delete at any time between runs).

A build writes temporary files beside the final ones, fsyncs them, and renames them into place
(the JSON sidecar last, which is what marks a cache complete), so a killed build leaves nothing a
later run trusts; its temporary files are removed by the next build of the same key. Builds of one
key take turns on a lock file (``.KEY.lock``, left in place): a second process waits for the first
and reuses its cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vitcore.atomic import locked
from vitcore.components import Preprocessing
from vitcore.errors import VitcoreError
from vitcore.steps import timed_step

#: Bumped when the file layout or the preprocessing of cached pixels changes.
FORMAT = 1
#: Temporary files of a build whose process is gone (or older than this) are removed.
STALE_TEMP_SECONDS = 24 * 3600
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def cache_side(pre: Preprocessing) -> int:
    """The cached square's side: the short side evaluation resizes to before its centre crop."""
    return round(pre.image_size / pre.crop_pct)


def _centre(extent: int, crop: int) -> int:
    """The offset torchvision's CenterCrop uses."""
    return int(round((extent - crop) / 2.0))


class SquareCrop:
    """Image (PIL or tensor) -> uint8 ``(S, S, 3)`` tensor: resize the short side to S, crop a square.

    Uses the same torchvision v2 resize (interpolation, antialias) as the eval transform, on the
    same uint8 tensor. The square is the centre one, shifted by at most a pixel along the long
    side so that the eval transform's centre crop of ``size`` inside it is exactly the loader's
    centre crop of the whole resized image (two roundings of half an odd margin would otherwise
    shift it). A plain class so workers can pickle it.
    """

    #: The spec setting that needs 8-bit images, for the error message.
    setting = "train.decode: 'cache'"

    def __init__(self, side: int, size: int, interpolation: str) -> None:
        from torchvision.transforms import InterpolationMode, v2

        self.side = side
        self.size = size
        self.resize = v2.Compose([
            v2.ToImage(),
            v2.Resize(side, interpolation=InterpolationMode(interpolation), antialias=True),
            v2.ToPureTensor(),
        ])

    def _offset(self, extent: int) -> int:
        wanted = _centre(extent, self.size) - _centre(self.side, self.size)
        return min(max(wanted, 0), extent - self.side)

    def chw(self, image: Any) -> torch.Tensor:
        """The square as a uint8 ``(3, S, S)`` tensor (a view; on the image's device)."""
        pixels = self.resize(image)
        if pixels.dtype != torch.uint8:
            raise VitcoreError(f"{self.setting} expects 8-bit images from the dataset, got {pixels.dtype}")
        if pixels.shape[0] == 1:  # a grey image from a provider that did not convert to RGB
            pixels = pixels.expand(3, -1, -1)
        height, width = pixels.shape[-2:]
        top, left = self._offset(height), self._offset(width)
        return pixels[:3, top : top + self.side, left : left + self.side]

    def __call__(self, image: Any) -> torch.Tensor:
        return self.chw(image).permute(1, 2, 0).contiguous()


class _Prepared(Dataset):
    """``(uint8 (S, S, 3), label)`` items of ``base``, for the one-off decode."""

    def __init__(self, base: Dataset, crop: SquareCrop) -> None:
        self.base = base
        self.crop = crop

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[index]
        return self.crop(image), int(label)


class DecodedCache(Dataset):
    """Items ``(uint8 (3, S, S) tensor, int label)`` read from a finished cache file.

    The memory map is opened lazily in each process (and dropped when pickled), so DataLoader
    workers share the page cache instead of receiving a copy of the array.
    """

    def __init__(self, data_path: Path, labels: np.ndarray, side: int, classes: list[str] | None = None) -> None:
        self.data_path = Path(data_path)
        self.labels = labels
        self.side = side
        if classes is not None:
            self.classes = classes
        self._array: np.memmap | None = None

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def _pixels(self) -> np.memmap:
        if self._array is None:
            self._array = np.memmap(self.data_path, dtype=np.uint8, mode="r",
                                    shape=(len(self.labels), self.side, self.side, 3))
        return self._array

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        hwc = np.array(self._pixels()[index])  # a private, writable copy of one image
        return torch.from_numpy(hwc).permute(2, 0, 1).contiguous(), int(self.labels[index])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    def __repr__(self) -> str:
        return f"DecodedCache({self.data_path.name}, {len(self)} images, {self.side}px)"


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def file_samples(dataset: Any) -> list[tuple[str, int]] | None:
    """``dataset.samples`` when it is a list of ``(path, label)`` pairs (ImageSamples), else None."""
    samples = getattr(dataset, "samples", None)
    if not isinstance(samples, (list, tuple)) or len(samples) != len(dataset):
        return None
    for item in samples[:1]:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], (str, os.PathLike))):
            return None
    return samples  # type: ignore[return-value]


def cache_key(dataset: Dataset, side: int, size: int, interpolation: str) -> str:
    """A hash of everything the cached pixels and labels depend on (see the module docstring)."""
    digest = hashlib.sha256()

    def add(*parts: Any) -> None:
        for part in parts:
            digest.update(str(part).encode("utf-8", "surrogatepass"))
            digest.update(b"\0")

    kind = type(dataset)
    add("vitcore-decoded", FORMAT, side, size, interpolation, f"{kind.__module__}.{kind.__qualname__}", len(dataset))  # type: ignore[arg-type]
    samples = file_samples(dataset)
    if samples is not None:
        for path, label in samples:
            try:
                stat = os.stat(path)
            except OSError as exc:
                raise VitcoreError(f"train.decode: cannot read {os.fspath(path)} to key the uint8 cache: {exc}") from None
            add(os.fspath(path), label, stat.st_size, stat.st_mtime_ns)
    else:
        add(_ADDRESS.sub("", repr(dataset)))
        size = len(dataset)  # type: ignore[arg-type]
        crop = SquareCrop(side, size, interpolation)
        for index in sorted({0, size // 2, size - 1}):  # a content check: reprs rarely name every file
            image, label = dataset[index]
            digest.update(crop(image).numpy().tobytes())
            add(label)
    return digest.hexdigest()[:32]


# --------------------------------------------------------------------------------------------
# Building and reusing
# --------------------------------------------------------------------------------------------


def build_workers() -> int:
    """Worker processes for the one-off decode: all cores but one, up to 8; none on 1-2 cores."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cpus <= 2 else min(8, cpus - 1)


def _paths(folder: Path, key: str) -> tuple[Path, Path, Path]:
    return folder / f"{key}.u8", folder / f"{key}.labels.npy", folder / f"{key}.json"


def _load(folder: Path, key: str, count: int, side: int, classes: list[str] | None) -> DecodedCache | None:
    """The finished cache for ``key``, or None when it is missing, partial or inconsistent."""
    data, labels_path, sidecar = _paths(folder, key)
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        labels = np.load(labels_path, allow_pickle=False)
        size = data.stat().st_size
    except (OSError, ValueError):
        return None
    expected = [count, side, side, 3]
    if (meta.get("format") != FORMAT or meta.get("key") != key or meta.get("shape") != expected
            or meta.get("count") != count or size != count * side * side * 3 or labels.shape != (count,)):
        return None
    return DecodedCache(data, labels, side, classes)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _host() -> str:
    """This machine's name without dots, so temporary names split cleanly on them."""
    return socket.gethostname().replace(".", "_") or "host"


def _temp_name(folder: Path, key: str, suffix: str) -> Path:
    return folder / f".{key}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}{suffix}.tmp"


def clean_stale_temps(folder: Path, key: str) -> list[Path]:
    """Remove temporary files of earlier builds of ``key`` whose process is gone (same host) or
    which are older than a day (another host); a live concurrent build keeps its files."""
    removed = []
    host = _host()
    for path in folder.glob(f".{key}.*.tmp"):
        parts = path.name[len(key) + 2 :].split(".")
        try:
            same_host = parts[0] == host
            pid = int(parts[1])
            old = time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS
        except (IndexError, ValueError, OSError):
            same_host, pid, old = False, -1, True
        if old or (same_host and pid != os.getpid() and not _alive(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _progress(total: int, enabled: bool):
    """tqdm's bar on a terminal; plain lines in a log file (tqdm is silent there); nothing when off."""
    from vitcore.steps import progress_bar

    return progress_bar(total, "decoding", unit="img", enabled=enabled)


def _decoded_batches(dataset: Dataset, crop: SquareCrop, workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    loader = DataLoader(_Prepared(dataset, crop), batch_size=32, shuffle=False, num_workers=workers,
                        prefetch_factor=4 if workers > 0 else None)
    yield from loader


def _write(folder: Path, key: str, dataset: Dataset, crop: SquareCrop, interpolation: str, workers: int,
           show_progress: bool) -> None:
    count, side = len(dataset), crop.side  # type: ignore[arg-type]
    need = count * side * side * 3
    free = shutil.disk_usage(folder).free
    if need > free:
        raise VitcoreError(
            f"train.decode: the uint8 cache of {count} images at {side}px needs {need / 1e9:.1f} GB in "
            f"{folder}, but only {free / 1e9:.1f} GB are free; free space, set VITCORE_CACHE to a "
            "bigger disk, or use 'loader' or 'device'"
        )
    data, labels_path, sidecar = _paths(folder, key)
    temps = [_temp_name(folder, key, suffix) for suffix in (".u8", ".labels.npy", ".json")]
    labels: list[np.ndarray] = []
    written = 0
    try:
        with open(temps[0], "wb") as out, _progress(count, show_progress) as bar:
            for images, batch_labels in _decoded_batches(dataset, crop, workers):
                if tuple(images.shape[1:]) != (side, side, 3):
                    raise VitcoreError(f"train.decode: decoded images of shape {tuple(images.shape[1:])}, expected ({side}, {side}, 3)")
                out.write(images.numpy().tobytes())  # sequential writes: a full disk raises, never SIGBUS
                labels.append(batch_labels.numpy().astype(np.int64))
                written += images.shape[0]
                bar.update(images.shape[0])
            out.flush()
            os.fsync(out.fileno())
        if written != count:
            raise VitcoreError(f"train.decode: the dataset yielded {written} images, but its length is {count}")
        with open(temps[1], "wb") as out:
            np.save(out, np.concatenate(labels) if labels else np.zeros(0, np.int64), allow_pickle=False)
            out.flush()
            os.fsync(out.fileno())
        meta = {"format": FORMAT, "key": key, "shape": [count, side, side, 3], "side": side, "count": count,
                "image_size": crop.size, "interpolation": interpolation, "dtype": "uint8", "layout": "NHWC",
                "dataset": _ADDRESS.sub("", repr(dataset))[:200]}
        with open(temps[2], "w", encoding="utf-8") as out:
            json.dump(meta, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        # The sidecar goes last: it is what marks the cache complete.
        os.replace(temps[0], data)
        os.replace(temps[1], labels_path)
        os.replace(temps[2], sidecar)
        _fsync_dir(folder)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def open_or_build(dataset: Dataset, pre: Preprocessing, root: Path, workers: int | None = None,
                  show_progress: bool = True) -> DecodedCache:
    """The decoded cache of ``dataset`` under ``root/decoded``: reused when its key matches, else
    built once (decoding through ``dataset`` with ``workers`` processes; default: by core count)."""
    side = cache_side(pre)
    count = len(dataset)  # type: ignore[arg-type]
    if count == 0:
        raise VitcoreError("train.decode: cannot cache an empty split")
    folder = Path(root) / "decoded"
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(dataset, side, pre.image_size, pre.interpolation)
    classes = getattr(dataset, "classes", None)
    classes = list(classes) if isinstance(classes, (list, tuple)) else None
    cached = _load(folder, key, count, side, classes)
    if cached is not None:
        return cached
    # One build per key at a time: a second process (a sweep's parallel trial, another run on the
    # same data) waits for the first and then reuses its cache instead of decoding everything again.
    with locked(folder / key):
        cached = _load(folder, key, count, side, classes)
        if cached is not None:
            return cached
        clean_stale_temps(folder, key)
        crop = SquareCrop(side, pre.image_size, pre.interpolation)
        what = f"building the decoded cache ({count} images, {side} px, in {folder})"
        with timed_step(what) if show_progress else nullcontext():
            _write(folder, key, dataset, crop, pre.interpolation, build_workers() if workers is None else workers,
                   show_progress)
    cached = _load(folder, key, count, side, classes)
    if cached is None:  # pragma: no cover - only if another process deletes it in between
        raise VitcoreError(f"train.decode: the uint8 cache in {folder} vanished right after it was built")
    return cached
