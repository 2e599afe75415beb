"""Batched versions of the built-in geometric augmentations, for ``train.augment: device``.

Each callable takes a ``(B, 3, H, W)`` batch on the training device (uint8, or float holding
0-255 pixel values; every image the same size) and gives **each image its own random
parameters**, drawn on the device with ``torch.rand(..., device=images.device)``: torchvision's
v2 transforms draw once per call, so calling them on a batch would crop or flip every image
alike. Nothing is read back to the host, so the training loop never waits on the device.

The work itself is done by what torch and torchvision offer, not hand-written kernels:
``torchvision.ops.roi_align`` crops and resizes every image of a batch in one call, ``torch.where``
flips a random subset, ``torch.nn.functional.interpolate`` (antialiased) resizes.
Imported lazily (it imports torch): ``vitcore.builtin.transforms``, whose components return these,
is imported by ``vitcore plugins list``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: ``roi_align``'s sampling points per output pixel and axis: adaptive, ``ceil(crop / output)``.
#: When enlarging (most random crops) that is one point at the output pixel's centre: plain
#: bilinear interpolation, as torchvision's resize gives; when shrinking it averages ``ceil(factor)``
#: points, a box filter close to ``antialias=True``. A fixed 2 blurs enlarged crops slightly: on a
#: natural-like picture it was further from ``v2.functional.resized_crop`` for every crop measured.
SAMPLING_RATIO = 0

#: Modes ``F.interpolate`` supports; antialiasing needs bilinear or bicubic.
_INTERPOLATE = {"bilinear": ("bilinear", True), "bicubic": ("bicubic", True),
                "nearest": ("nearest", False), "nearest-exact": ("nearest-exact", False)}


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images if images.is_floating_point() else images.float()


def _like(result: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``result`` in the dtype of ``images``: uint8 rounded and saturated, as torchvision does."""
    if images.dtype == torch.uint8:
        return result.round().clamp_(0, 255).to(torch.uint8)
    return result.to(images.dtype)


# --------------------------------------------------------------------------------------------
# Random resized crop
# --------------------------------------------------------------------------------------------


def sample_crop_params(count: int, height: int, width: int, scale: tuple[float, float],
                       ratio: tuple[float, float], device: torch.device | str = "cpu", attempts: int = 10,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """``(count, 4)`` float ``[top, left, crop_height, crop_width]``, one independent draw per image.

    ``RandomResizedCrop.get_params`` of torchvision, vectorised: each image gets ``attempts``
    candidates (area uniform in ``scale`` times the image's, log aspect ratio uniform in
    ``log(ratio)``, sides rounded to whole pixels) and keeps the first that fits in the image,
    at a uniformly drawn whole-pixel position; an image whose candidates all fail gets
    torchvision's fallback, the centre crop clamped to ``ratio``. All on ``device``, no host sync.
    """
    area = height * width
    low, high = math.log(ratio[0]), math.log(ratio[1])
    draws = torch.rand(count, attempts, 4, device=device, generator=generator)
    target = area * (scale[0] + (scale[1] - scale[0]) * draws[..., 0])
    aspect = torch.exp(low + (high - low) * draws[..., 1])
    widths = torch.round(torch.sqrt(target * aspect))
    heights = torch.round(torch.sqrt(target / aspect))
    valid = (widths > 0) & (widths <= width) & (heights > 0) & (heights <= height)
    first = valid.int().argmax(dim=1, keepdim=True)  # the first valid candidate (or 0)

    def pick(values: torch.Tensor) -> torch.Tensor:
        return values.gather(1, first).squeeze(1)

    crop_h, crop_w = pick(heights), pick(widths)
    # Whole-pixel offsets uniform in [0, extent - crop], as torch.randint(0, extent - crop + 1).
    top = torch.minimum(torch.floor(pick(draws[..., 2]) * (height - crop_h + 1)), height - crop_h)
    left = torch.minimum(torch.floor(pick(draws[..., 3]) * (width - crop_w + 1)), width - crop_w)
    found = valid.any(dim=1)
    # Python numbers, not a tensor: building one on a CUDA device would copy and wait.
    fallback = _centre_fallback(height, width, ratio)
    return torch.stack([torch.where(found, value, other)
                        for value, other in zip((top, left, crop_h, crop_w), fallback)], dim=1)


def _centre_fallback(height: int, width: int, ratio: tuple[float, float]) -> list[float]:
    """torchvision's crop when no candidate fits: the centre, its aspect ratio clamped to ``ratio``."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_w = width
        crop_h = round(crop_w / min(ratio))
    elif in_ratio > max(ratio):
        crop_h = height
        crop_w = round(crop_h * max(ratio))
    else:
        crop_w, crop_h = width, height
    return [float((height - crop_h) // 2), float((width - crop_w) // 2), float(crop_h), float(crop_w)]


def crop_resize(images: torch.Tensor, params: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``params[i]`` (``[top, left, height, width]``, pixels) out of image i and resize it to
    ``size`` x ``size``, the whole batch in one ``torchvision.ops.roi_align`` call (bilinear)."""
    top, left, crop_h, crop_w = params.to(torch.float32).unbind(1)
    index = torch.arange(images.shape[0], device=images.device, dtype=torch.float32)
    # roi_align boxes are (batch index, x1, y1, x2, y2) in continuous coordinates where pixel k
    # spans [k, k + 1); aligned=True samples at pixel centres, as interpolate(align_corners=False).
    boxes = torch.stack([index, left, top, left + crop_w, top + crop_h], dim=1)
    return _like(_roi_align(_as_float(images), boxes, size), images)


def _roi_align(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    from torchvision.ops import roi_align

    boxes = boxes.to(images.dtype)
    if torch.are_deterministic_algorithms_enabled() and images.device.type in ("cuda", "mps", "xpu"):
        # torchvision then swaps in its pure-Python roi_align (compiled with torch.compile, and with
        # adaptive sampling a (B, C, s, s, H, W) intermediate) because the kernel's *backward* is
        # not deterministic. Its forward is (one thread per output value, fixed order), and no
        # gradient flows here: call the registered kernel directly.
        return torch.ops.torchvision.roi_align(images, boxes, 1.0, size, size, SAMPLING_RATIO, True)
    return roi_align(images, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=SAMPLING_RATIO,
                     aligned=True)


class BatchRandomResizedCrop:
    """Per image: a random area and aspect ratio cropped and resized to ``size`` (bilinear)."""

    def __init__(self, size: int, scale: tuple[float, float], ratio: tuple[float, float]) -> None:
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        count, _, height, width = images.shape
        params = sample_crop_params(count, height, width, self.scale, self.ratio, images.device)
        return crop_resize(images, params, self.size)

    def __repr__(self) -> str:
        return f"BatchRandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


# --------------------------------------------------------------------------------------------
# Flips
# --------------------------------------------------------------------------------------------


class BatchRandomFlip:
    """Per image, with probability ``p``: mirror along ``dim`` (-1 left-right, -2 upside down)."""

    def __init__(self, p: float, dim: int) -> None:
        self.p = p
        self.dim = dim

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(images.shape[0], device=images.device) < self.p
        return torch.where(flip.view(-1, 1, 1, 1), images.flip(self.dim), images)

    def __repr__(self) -> str:
        return f"BatchRandomFlip(p={self.p}, dim={self.dim})"


# --------------------------------------------------------------------------------------------
# Resize and centre crop (deterministic; also the engine's final fit to image_size)
# --------------------------------------------------------------------------------------------


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """The shape ``v2.Resize(short_side)`` gives: short side to ``short_side``, long side scaled
    and truncated as torchvision does."""
    if width <= height:
        return int(short_side * height / width), short_side
    return short_side, int(short_side * width / height)


class BatchResizeCenterCrop:
    """Resize the short side to ``short_side`` (antialiased), then centre-crop ``size`` x ``size``:
    ``v2.Resize(short_side)`` then ``v2.CenterCrop(size)`` for a batch of same-size images."""

    def __init__(self, size: int, short_side: int, interpolation: str = "bilinear") -> None:
        if short_side < size:
            raise ValueError(f"short_side {short_side} is smaller than the crop {size}")
        self.size = size
        self.short_side = short_side
        self.mode, self.antialias = _INTERPOLATE.get(interpolation, _INTERPOLATE["bilinear"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        new_h, new_w = resized_shape(height, width, self.short_side)
        out = images
        if (new_h, new_w) != (height, width):
            out = F.interpolate(_as_float(images), size=(new_h, new_w), mode=self.mode, antialias=self.antialias,
                                **({} if self.mode.startswith("nearest") else {"align_corners": False}))
            out = _like(out, images)
        top, left = round((new_h - self.size) / 2.0), round((new_w - self.size) / 2.0)  # CenterCrop's
        return out[..., top : top + self.size, left : left + self.size]

    def __repr__(self) -> str:
        return f"BatchResizeCenterCrop(size={self.size}, short_side={self.short_side}, mode={self.mode!r})"
