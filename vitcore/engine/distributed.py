"""torchrun support: process-group set-up from the environment and small collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> DistInfo:
    """Read torchrun's variables; a plain ``vitcore run`` is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def seed_rank_epoch(seed: int, info: DistInfo, epoch: int) -> None:
    """Give each rank its own random stream for ``epoch`` (torch's CPU and device generators).

    Every rank starts from the same seed so their models start alike, but after that identical
    streams would make every rank draw the same dropout and drop-path masks and the same on-device
    augmentations (``train.augment: device``, MixUp), wasting the extra GPUs' variety. Reseeding
    from (seed, rank, epoch) at each epoch also keeps a resumed torchrun run on the same draws as an
    uninterrupted one, which last.pt (rank 0's generator state only) could not restore for the others.
    """
    if info.enabled:
        torch.manual_seed(seed + 1_000_003 * (info.rank + 1) + 7_919 * epoch)


def init_process_group(info: DistInfo, device: torch.device) -> None:
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def min_over_ranks(value: int, device: torch.device) -> int:
    """The smallest of every rank's ``value`` (e.g. the batch that fits on every GPU)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(box, op=dist.ReduceOp.MIN)
    return int(box.item())


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's value on every rank (e.g. the run directory rank 0 created)."""
    if not info.enabled:
        return value
    box = [value if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
