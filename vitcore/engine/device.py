"""Choosing the device and the autocast precision."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vitcore.errors import SpecError


def select_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks cuda (this process's local rank), then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpecError(f"train.device: {name!r} is not a device (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SpecError("train.device: cuda was asked for but no CUDA device is available; use auto or cpu")
        count = torch.cuda.device_count()
        if device.index is None:
            device = torch.device("cuda", local_rank % count)
        elif device.index >= count:
            raise SpecError(f"train.device: {name!r}, but this machine has {count} CUDA device(s), "
                            f"cuda:0 to cuda:{count - 1}; use one of those or cuda")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SpecError("train.device: mps was asked for but is not available here; use auto or cpu")
    return device


@dataclass(frozen=True)
class Precision:
    """The autocast dtype (None: plain fp32) and whether a gradient scaler is needed."""

    name: str
    dtype: torch.dtype | None
    use_scaler: bool

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=self.dtype)


def resolve_precision(name: str, device: torch.device) -> Precision:
    if name == "auto":
        name = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if name == "fp32":
        return Precision("fp32", None, False)
    if name == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    if name == "fp16":
        if device.type == "cpu":
            raise SpecError("train.precision: fp16 needs a GPU; use bf16 or fp32 on the CPU")
        return Precision("fp16", torch.float16, device.type == "cuda")
    raise SpecError(f"train.precision: unknown precision {name!r}")
