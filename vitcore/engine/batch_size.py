"""``train.batch_size: auto``: the largest batch whose training step fits in device memory.

Found by trying real steps (forward, backward, optimizer step at the run's precision) on a copy of
the model with synthetic images: batches double until one runs out of memory, then a bisection
narrows the gap. The result keeps a safety margin, because a real run also holds the loader's
pinned batches, the evaluation pass and allocator fragmentation that a probe does not see.
On CUDA this is what users want; on a CPU, throughput stops growing long before memory runs out,
so ``auto`` there means a modest fixed batch and no probing.
"""

from __future__ import annotations

import copy
import gc
from dataclasses import dataclass
from typing import Callable

import torch

#: Never probe beyond this: past it ViT throughput no longer grows and the lr schedule suffers.
MAX_AUTO_BATCH = 1024
#: The batch ``auto`` means where memory is not the limit (CPU, MPS).
HOST_AUTO_BATCH = 64
#: Fraction of the largest probed batch that is used, for what the probe does not see.
SAFETY_MARGIN = 0.9
#: Bisection stops when the gap between a fitting and a failing batch is this small.
RESOLUTION = 8


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA's OutOfMemoryError and the CPU allocator's failure (a plain RuntimeError)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text)


def largest_fitting(fits: Callable[[int], bool], start: int, limit: int) -> int:
    """The largest batch in [1, limit] for which ``fits`` is true, assuming it is monotone.

    Doubles from ``start`` to bracket the boundary, then bisects to ``RESOLUTION``.
    Returns 0 when even batch 1 does not fit.
    """
    low, high = 0, None  # low fits (0: nothing known to fit), high fails
    batch = max(1, min(start, limit))
    while True:
        if fits(batch):
            low = batch
            if batch >= limit:
                return low
            batch = min(batch * 2, limit)
        else:
            high = batch
            break
    if low == 0 and high is not None and high > 1:
        return largest_fitting(fits, 1, high - 1)
    while high - low > RESOLUTION:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


@dataclass
class BatchProbe:
    """Runs one real training step at a given batch on a private copy of the model."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    autocast: Callable[[], object]
    device: torch.device
    image_size: int
    num_classes: int

    def fits(self, batch: int) -> bool:
        try:
            self._step(batch)
            return True
        except Exception as exc:  # noqa: BLE001 - only memory failures are answers, the rest re-raise
            if not is_out_of_memory(exc):
                raise
            return False
        finally:
            self.optimizer.zero_grad(set_to_none=True)
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _step(self, batch: int) -> None:
        images = torch.randn(batch, 3, self.image_size, self.image_size, device=self.device)
        targets = torch.randint(0, self.num_classes, (batch,), device=self.device)
        with self.autocast():
            loss = torch.nn.functional.cross_entropy(self.model(images), targets)
        loss.backward()
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # an asynchronous failure surfaces here, inside the try


def probe_batch_size(
    model: torch.nn.Module,
    make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
    autocast: Callable[[], object],
    device: torch.device,
    image_size: int,
    num_classes: int,
    limit: int = MAX_AUTO_BATCH,
) -> int:
    """Largest per-process batch (before the safety margin) whose step fits on ``device``.

    ``model`` is not touched: the probe trains a deep copy, so weights, buffers and the seeded
    random state of the run stay as they were.
    """
    rng_state = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    probe_model = copy.deepcopy(model).to(device).train()
    optimizer = make_optimizer(probe_model)
    probe = BatchProbe(probe_model, optimizer, autocast, device, image_size, num_classes)
    try:
        if not probe.fits(1):  # also allocates the optimizer state the real run will hold
            return 0
        return largest_fitting(probe.fits, 16, limit)
    finally:
        del probe, optimizer, probe_model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        torch.random.set_rng_state(rng_state)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def with_margin(batch: int, world_size: int, train_size: int) -> int:
    """Per-process probe result -> global batch: margin, multiple of 8 where possible, data cap."""
    local = int(batch * SAFETY_MARGIN)
    if local >= 16:
        local -= local % 8  # tensor-core friendly shapes
    return cap_to_data(max(1, local) * world_size, world_size, train_size)


def cap_to_data(global_batch: int, world_size: int, train_size: int) -> int:
    """No more than one epoch of data, and a multiple of the process count."""
    per_epoch_cap = max(world_size, train_size - train_size % world_size)
    return max(world_size, min(global_batch, per_epoch_cap))
