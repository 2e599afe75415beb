"""Data loading: transforms in the loader (uint8), normalisation on the device, rank-aware batches.

Images travel as uint8 (a quarter of the bytes of float32) and are normalised on the device, so
the host does the least work per image. Batches come from one global, seeded order: each rank
takes its slice of every global batch, which makes a torchrun run see exactly the batches a single
process with the same global batch sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vitcore.components import Preprocessing
from vitcore.engine.distributed import DistInfo
from vitcore.errors import VitcoreError


class TransformedDataset(Dataset):
    """Applies a transform to the image of each ``(image, label)`` item."""

    def __init__(self, base: Dataset, transform: Callable) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[index]
        return self.transform(image), label


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's share of each global batch of a seeded per-epoch permutation."""

    def __init__(self, size: int, global_batch: int, info: DistInfo, seed: int, shuffle: bool = True,
                 drop_last: bool = True) -> None:
        if global_batch % info.world_size:
            raise VitcoreError(
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

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.global_batch
        return -(-self.size // self.global_batch)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        start = self.info.rank * self.local_batch
        for b in range(len(self)):
            batch = order[b * self.global_batch : (b + 1) * self.global_batch]
            if len(batch) < self.global_batch:  # last, partial batch: split as evenly as possible
                share = batch[self.info.rank :: self.info.world_size]
            else:
                share = batch[start : start + self.local_batch]
            if share:
                yield share


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
    train: DataLoader
    val: DataLoader
    train_sampler: GlobalBatchSampler


def _loader(dataset: Dataset, workers: int, device: torch.device, **kwargs: Any) -> DataLoader:
    return DataLoader(
        dataset,
        num_workers=workers,
        pin_memory=device.type == "cuda",
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
) -> Loaders:
    if len(train_set) == 0:  # type: ignore[arg-type]
        raise VitcoreError("data: the training split is empty")
    if len(val_set) == 0:  # type: ignore[arg-type]
        raise VitcoreError("data: the validation split is empty (add images or raise val_fraction)")
    workers = auto_workers(device, info) if num_workers == "auto" else int(num_workers)
    train_size = len(train_set)  # type: ignore[arg-type]
    sampler = GlobalBatchSampler(
        train_size, batch_size, info, seed, shuffle=True, drop_last=train_size >= batch_size
    )
    generator = torch.Generator().manual_seed(seed + info.rank)
    train = _loader(TransformedDataset(train_set, train_transform), workers, device,
                    batch_sampler=sampler, generator=generator)
    val = _loader(TransformedDataset(val_set, eval_transform), workers, device,
                  sampler=ShardSampler(len(val_set), info),  # type: ignore[arg-type]
                  batch_size=max(1, batch_size // info.world_size) * 2)
    return Loaders(train, val, sampler)


def first_samples(dataset: Dataset, transform: Callable, count: int) -> Sequence[tuple[torch.Tensor, int]]:
    """A few transformed items, spread over the data set, for visualizers and export checks."""
    size = len(dataset)  # type: ignore[arg-type]
    step = max(1, size // max(1, count))
    return [TransformedDataset(dataset, transform)[i] for i in range(0, size, step)[:count]]
