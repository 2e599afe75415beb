"""``train.ema``: an exponential moving average of the weights, updated on the device.

One fused ``_foreach_lerp_`` per optimizer step over every floating parameter; buffers are
copied. The decay is a host number computed from the host's step count, so the update never
reads the device (torch.optim.swa_utils.AveragedModel checks a device counter on every update,
one sync per step, which is why it is not used here).
"""

from __future__ import annotations

import copy
from typing import Any

import torch


class WeightEma:
    """The averaged copy of a model (``module``, eval mode, no gradients) and its update count."""

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup = decay, warmup
        self.updates = 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - self.current_decay()
        averaged, current = [], []
        for ema_p, p in zip(self.module.parameters(), model.parameters()):
            if ema_p.dtype.is_floating_point:
                averaged.append(ema_p)
                current.append(p.detach())
        if averaged:
            torch._foreach_lerp_(averaged, current, weight)
        for ema_b, b in zip(self.module.buffers(), model.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
