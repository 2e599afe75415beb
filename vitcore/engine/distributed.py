"""torchrun support: process-group set-up from the environment and small collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

#: How long ranks wait while others do one-off work: generating or preparing the data set,
#: building the decoded cache, the end-of-run pictures and exports. The default process group's
#: timeout (10 minutes with NCCL) suits collectives of the training loop, but decoding ImageNet
#: into the cache takes longer, and a timeout there would kill the run before its first step.
PATIENT_TIMEOUT = timedelta(hours=12)
_patient_group = None


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
    if info.enabled:
        global _patient_group
        # Gloo on the host: waiting in it costs no GPU stream, and its timeout is its own.
        _patient_group = dist.new_group(backend="gloo", timeout=PATIENT_TIMEOUT)


def destroy_process_group() -> None:
    global _patient_group
    _patient_group = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def patient_barrier(info: DistInfo) -> None:
    """A barrier that waits up to ``PATIENT_TIMEOUT`` (for ranks busy with one-off work)."""
    if info.enabled:
        dist.barrier(group=_patient_group)


def leader_first(info: DistInfo, job: Callable[[], T], per_node: bool = False) -> T:
    """``job()`` on every rank: rank 0 (with ``per_node``, each node's local rank 0) runs it first,
    the other ranks after it has finished, e.g. to reuse a cache it wrote.

    The wait is a ``patient_barrier``; the leader reaches it even when its job raises, so the
    others then run the job themselves and fail with their own message instead of hanging.
    """
    if not info.enabled:
        return job()
    leader = (info.local_rank if per_node else info.rank) == 0
    if not leader:
        patient_barrier(info)
        return job()
    try:
        return job()
    finally:
        patient_barrier(info)


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

