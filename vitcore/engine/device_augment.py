"""``train.augment: device``: the per-sample augmentations run batched on the training device.

With ``augment: loader`` (the default) every training image is augmented on its own in the data
loader (``sample_transform``: CPU work per image, in the workers). With ``augment: device`` the
loader only delivers fixed-size ``S x S`` squares, ``S = round(image_size / crop_pct)`` (the
square the evaluation resize and the uint8 cache use), and the augmentations' ``device_transform``
callables process each whole batch on the device, every image with its own random parameters:

* decode ``loader``: the workers decode and cut the square (``SquareImage``); nothing random.
* decode ``cache``: the cached items already are that square; the workers pass them through.
* decode ``device``: ``DeviceDecodeLoader`` cuts the square out of each decoded image on the device.

In the training loop, ``DeviceAugment`` replaces the plain ``DeviceNormalize``: the uint8 batch
goes to the device, becomes float (0-255 values), runs through the device transforms in the
spec's order, is brought to ``image_size`` (centre crop, resizing first if needed, as ``FitSize``
does) if none of them did, and only then is normalised. Augmenting before normalisation keeps
the transforms in pixel units (as ``sample_transform`` sees them, e.g. a fill value of 0-255)
and normalises the smaller ``image_size`` batch rather than the ``S x S`` one; ``roi_align`` needs
float anyway, and the resampling is linear, so the order does not change the pixels otherwise.
MixUp and CutMix (``batch_transform``) still come after normalisation. Evaluation is unchanged.

What differs from ``augment: loader``: crops come from the centre square (as with decode
'cache', a crop never sees the ends of a non-square image's long side) at ``S`` pixels rather
than the original resolution, and random_resized_crop always resamples bilinearly.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from vitcore.components import Augmentation, AugmentationContext, Preprocessing
from vitcore.engine.decoded_cache import SquareCrop, cache_side
from vitcore.errors import SpecError, VitcoreError

#: The values of the spec's ``train.augment``.
AUGMENT_MODES = ("loader", "device")


class SquareImage(SquareCrop):
    """Image (PIL, or a uint8 tensor on any device) -> uint8 ``(3, S, S)``: the short side resized
    to ``S``, then the square ``decoded_cache`` keeps. A plain class so workers can pickle it."""

    setting = "train.augment: 'device'"

    def __init__(self, pre: Preprocessing) -> None:
        super().__init__(cache_side(pre), pre.image_size, pre.interpolation)

    def __call__(self, image: Any) -> torch.Tensor:
        return self.chw(image)


class PassThrough:
    """The cached uint8 ``(3, S, S)`` items as they are (a picklable identity)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image


def loader_transform(decode: str, pre: Preprocessing) -> Callable:
    """The per-sample training transform of the loader with ``augment: device``: to the square."""
    return PassThrough() if decode == "cache" else SquareImage(pre)


def device_steps(augmentations: Sequence[Augmentation], ctx: AugmentationContext,
                 names: Sequence[str] | None = None) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The augmentations' device transforms in order; a VitcoreError naming the first augmentation
    that has a per-sample transform but no device version. Batch-only ones (MixUp) are skipped."""
    steps = []
    for i, augmentation in enumerate(augmentations):
        step = augmentation.device_transform(ctx)
        if step is None:
            if augmentation.sample_transform(ctx) is not None:
                name = names[i] if names is not None else augmentation.name
                raise SpecError(
                    f"train.augment: 'device' needs every augmentation to run on the device; augmentations[{i}] "
                    f"({name}) has no device version. Remove it or use augment 'loader'"
                )
            continue
        if not callable(step):
            raise VitcoreError(f"augmentations[{i}] ({augmentation.name}): device_transform returned "
                               f"{type(step).__name__}, not a callable")
        steps.append(step)
    return steps


class DeviceAugment:
    """Training batches: uint8 ``(B, 3, S, S)`` (host or device) -> augmented, normalised float
    ``(B, 3, s, s)`` on the device. Takes the place of ``DeviceNormalize`` in ``train_epoch``."""

    def __init__(self, steps: Sequence[Callable[[torch.Tensor], torch.Tensor]], pre: Preprocessing,
                 normalize: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> None:
        from vitcore.engine.device_transforms import BatchResizeCenterCrop

        self.steps = list(steps)
        self.size = pre.image_size
        self.fit = BatchResizeCenterCrop(pre.image_size, cache_side(pre), pre.interpolation)
        self.normalize = normalize
        self.device = device

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """The float batch (0-255 values) at ``image_size``, before normalisation."""
        images = images.to(self.device, non_blocking=True).float()
        for step in self.steps:
            images = step(images)
        if tuple(images.shape[-2:]) != (self.size, self.size):
            images = self.fit(images)
        return images

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.augment(images))

    def __repr__(self) -> str:
        return f"DeviceAugment({self.steps}, size={self.size})"
