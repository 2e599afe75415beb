"""Data loading: transforms in the loader (uint8), normalisation on the device, rank-aware batches.

Images travel as uint8 (a quarter of the bytes of float32) and are normalised on the device, so
the host does the least work per image. Batches come from one global, seeded order: each rank
takes its slice of every global batch, which makes a torchrun run see exactly the batches a single
process with the same global batch sees.

Three ways to decode (``decode`` of ``build_loaders``), so a fast GPU is not starved by the CPU:

* ``loader``: PIL decodes in the DataLoader workers (the default; works with any dataset).
* ``cache``: every image is decoded once into a uint8 memory map (``decoded_cache``); workers
  then only crop and augment raw pixels. Training crops come from the centre square.
* ``device``: workers read file bytes; the training device decodes JPEG batches (nvJPEG on
  CUDA) and runs the per-sample transforms (``device_decode``). Needs file-backed datasets.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vitcore.components import Preprocessing
from vitcore.engine.distributed import DistInfo, leader_first
from vitcore.errors import SpecError, VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vitcore.engine.device_decode import DeviceDecodeLoader

#: The values of ``build_loaders(decode=...)`` (the spec's ``train.decode``).
DECODE_MODES = ("loader", "cache", "device")


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one training sample's augmentation draws in one epoch."""
    return ((seed * 1_000_003 + epoch) * 2_654_435_761 + index) % (2**63 - 1)


def _seed_streams(seed: int) -> None:
    torch.random.default_generator.manual_seed(seed)  # CPU only: the device's streams are the model's
    random.seed(seed)
    np.random.seed(seed % 2**32)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block on CPU random streams (torch, Python, numpy) seeded with ``seed``, then put
    the caller's streams back: a sample's draws depend on the sample alone, not on which process
    or worker made it or what ran before (exact resume for any ``num_workers``, mid-epoch too).

    In a data-loader worker the streams are left seeded: nothing but the samples draws from a
    worker's streams and each sample seeds them afresh, and saving and restoring the three
    states cost more than the whole augmentation of a small image.
    """
    if torch.utils.data.get_worker_info() is not None:
        _seed_streams(seed)
        yield
        return
    torch_state, py_state, np_state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    _seed_streams(seed)
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        np.random.set_state(np_state)


class TransformedDataset(Dataset):
    """Applies a transform to the image of each ``(image, label)`` item.

    Training keys are ``(epoch, index)`` pairs (``GlobalBatchSampler``): the transform then runs on
    streams seeded from (``seed``, epoch, index). Plain integer keys (evaluation) run as they are.
    """

    def __init__(self, base: Dataset, transform: Callable, seed: int = 0) -> None:
        self.base = base
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        if isinstance(key, tuple):
            epoch, index = key
            image, label = self.base[index]
            with seeded(sample_seed(self.seed, epoch, index)):
                return self.transform(image), label
        image, label = self.base[key]
        return self.transform(image), label


class GlobalBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's share of each global batch of a seeded per-epoch permutation.

    Each item is an ``(epoch, index)`` key, so the dataset seeds that sample's augmentation from
    it. ``set_epoch(epoch, skip=k)`` starts the epoch at its k-th batch (a mid-epoch resume).
    """

    def __init__(self, size: int, global_batch: int, info: DistInfo, seed: int, shuffle: bool = True,
                 drop_last: bool = True) -> None:
        if global_batch % info.world_size:
            raise SpecError(
                f"train.batch_size: {global_batch} is not divisible by the {info.world_size} processes; "
                "choose a multiple of the process count"
            )
        self.size = size
        self.global_batch = global_batch
        self.local_batch = global_batch // info.world_size
        self.info = info
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.skip)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        start = self.info.rank * self.local_batch
        for b in range(self.skip, self.batches_per_epoch()):
            batch = order[b * self.global_batch : (b + 1) * self.global_batch]
            if len(batch) < self.global_batch:  # last, partial batch: split as evenly as possible
                share = batch[self.info.rank :: self.info.world_size]
            else:
                share = batch[start : start + self.local_batch]
            if share:
                yield [(self.epoch, i) for i in share]

    def batches_per_epoch(self) -> int:
        """Batches of a whole epoch (``len`` counts only those left after ``skip``)."""
        if self.drop_last:
            return self.size // self.global_batch
        return -(-self.size // self.global_batch)


class ShardSampler(Sampler[int]):
    """Evaluation: every rank takes every world_size-th item, so nothing is seen twice."""

    def __init__(self, size: int, info: DistInfo) -> None:
        self.indices = list(range(info.rank, size, info.world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


class DeviceNormalize:
    """uint8 batch on the host -> normalised float batch on the device."""

    def __init__(self, pre: Preprocessing, device: torch.device, channels_last: bool = False) -> None:
        self.device = device
        self.mean = torch.tensor(pre.mean, device=device).view(1, 3, 1, 1) * 255
        self.inv_std = 1 / (torch.tensor(pre.std, device=device).view(1, 3, 1, 1) * 255)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True).float()
        images = (images - self.mean) * self.inv_std
        return images.contiguous(memory_format=self.memory_format)


def auto_workers(device: torch.device, info: DistInfo) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_process = max(1, cpus // info.world_size)
    if device.type == "cpu":
        # On the CPU the model itself needs the cores; workers only pay off on bigger machines.
        return 0 if per_process <= 4 else min(4, per_process // 4)
    return min(8, max(1, per_process - 1))


@dataclass
class Loaders:
    """Iterables of ``(uint8 (B, 3, s, s) images, int64 labels)``; with decode 'device' the images
    are already on the device (``DeviceDecodeLoader``)."""

    train: "DataLoader | DeviceDecodeLoader"
    val: "DataLoader | DeviceDecodeLoader"
    train_sampler: GlobalBatchSampler


def _loader(dataset: Dataset, workers: int, device: torch.device, pin_memory: bool | None = None,
            **kwargs: Any) -> DataLoader:
    return DataLoader(
        dataset,
        num_workers=workers,
        pin_memory=device.type == "cuda" if pin_memory is None else pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        **kwargs,
    )


def build_loaders(
    train_set: Dataset,
    val_set: Dataset,
    train_transform: Callable,
    eval_transform: Callable,
    batch_size: int,
    info: DistInfo,
    device: torch.device,
    seed: int,
    num_workers: int | str,
    decode: str = "loader",
    cache_root: Path | None = None,
    preprocessing: Preprocessing | None = None,
) -> Loaders:
    """Train and validation loaders; ``decode`` picks where images are decoded (module docstring).

    'cache' needs ``cache_root`` (the cache goes to ``cache_root/decoded``) and ``preprocessing``
    (the cached square's side is ``round(image_size / crop_pct)``); under torchrun rank 0 builds
    it while the other ranks wait (each node's local rank 0 on its own disk), then they reuse it.
    """
    if decode not in DECODE_MODES:
        raise VitcoreError(f"train.decode: unknown mode {decode!r}; choose one of {', '.join(DECODE_MODES)}")
    if len(train_set) == 0:  # type: ignore[arg-type]
        raise SpecError("data: the training split is empty")
    if len(val_set) == 0:  # type: ignore[arg-type]
        raise SpecError("data: the validation split is empty (add images or raise val_fraction)")
    if decode == "cache":
        train_set, val_set = _cached_splits(train_set, val_set, cache_root, preprocessing, info)
    workers = auto_workers(device, info) if num_workers == "auto" else int(num_workers)
    train_size = len(train_set)  # type: ignore[arg-type]
    sampler = GlobalBatchSampler(
        train_size, batch_size, info, seed, shuffle=True, drop_last=train_size >= batch_size
    )
    # Each loader draws its workers' base seed from its own generator: from the global one, a
    # loader would take a draw from the model's stream (dropout) at every new iterator, and
    # persistent workers make new iterators only sometimes, so runs would depend on num_workers.
    generator = torch.Generator().manual_seed(seed + info.rank)
    val_sampler = ShardSampler(len(val_set), info)  # type: ignore[arg-type]
    val_batch = max(1, batch_size // info.world_size) * 2
    if decode == "device":
        return _device_loaders(train_set, val_set, train_transform, eval_transform, workers, device,
                               sampler, generator, val_sampler, val_batch)
    train = _loader(TransformedDataset(train_set, train_transform, seed), workers, device,
                    batch_sampler=sampler, generator=generator)
    val = _loader(TransformedDataset(val_set, eval_transform), workers, device,
                  sampler=val_sampler, batch_size=val_batch,
                  generator=torch.Generator().manual_seed(seed))
    return Loaders(train, val, sampler)


def _cached_splits(train_set: Dataset, val_set: Dataset, cache_root: Path | None,
                   pre: Preprocessing | None, info: DistInfo) -> tuple[Dataset, Dataset]:
    """Both splits from the uint8 cache; rank 0 builds it first, the other ranks then reuse it."""
    from vitcore.engine.decoded_cache import open_or_build

    if cache_root is None:
        raise VitcoreError("train.decode: 'cache' needs a cache folder (cache_root); use 'loader' without one")
    if pre is None:
        raise VitcoreError("train.decode: 'cache' needs the model's preprocessing to size the cache")

    def open_both() -> tuple[Dataset, Dataset]:
        return (open_or_build(train_set, pre, cache_root, show_progress=info.is_main),
                open_or_build(val_set, pre, cache_root, show_progress=info.is_main))

    # Per node: the cache lives on each node's disk (VITCORE_CACHE); on a shared disk the leaders'
    # concurrent builds are safe (each writes its own temp files, then renames them into place).
    return leader_first(info, open_both, per_node=True)


def _device_loaders(train_set: Dataset, val_set: Dataset, train_transform: Callable,
                    eval_transform: Callable, workers: int, device: torch.device,
                    sampler: GlobalBatchSampler, generator: torch.Generator, val_sampler: ShardSampler,
                    val_batch: int) -> Loaders:
    """Workers read file bytes; ``DeviceDecodeLoader`` decodes and transforms on ``device``."""
    from vitcore.engine.device_decode import DeviceDecodeLoader, EncodedFiles, collate_encoded, samples_of

    train_files, val_files = EncodedFiles(samples_of(train_set)), EncodedFiles(samples_of(val_set))
    # Not pinned: the bytes are small, decode_jpeg wants them in ordinary CPU memory, and pinning
    # would rebuild the batch list without its paths.
    train = _loader(train_files, workers, device, pin_memory=False, collate_fn=collate_encoded,
                    batch_sampler=sampler, generator=generator)
    val = _loader(val_files, workers, device, pin_memory=False, collate_fn=collate_encoded,
                  sampler=val_sampler, batch_size=val_batch, generator=torch.Generator().manual_seed(0))
    return Loaders(DeviceDecodeLoader(train, train_transform, device),
                   DeviceDecodeLoader(val, eval_transform, device), sampler)


def first_samples(dataset: Dataset, transform: Callable, count: int) -> Sequence[tuple[torch.Tensor, int]]:
    """A few transformed items, spread over the data set, for visualizers and export checks."""
    size = len(dataset)  # type: ignore[arg-type]
    step = max(1, size // max(1, count))
    return [TransformedDataset(dataset, transform)[i] for i in range(0, size, step)[:count]]
