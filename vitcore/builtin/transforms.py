"""Built-in augmentations (torchvision transforms v2); the pipelines are in ``vitcore.engine.transforms``.

Per-sample transforms work on ``uint8`` ``(3, H, W)`` tensors in the data loader; MixUp and CutMix
work on the float batch on the device. Normalisation is left to the engine, on the device.
random_resized_crop, resize and the flips also have batched device versions
(``device_transform``, in ``vitcore.engine.device_transforms``) for ``train.augment: device``.
torch and torchvision are imported inside functions: ``vitcore plugins list`` imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Callable, Literal

from pydantic import AfterValidator, Field

from vitcore import hookimpl
from vitcore.components import Augmentation, AugmentationContext
from vitcore.components import (
    Options as OptionsBase,  # each component's own class is Options
)
from vitcore.engine.transforms import resize_center_crop as _resize_center_crop
from vitcore.engine.transforms import warp_interpolation as _warp_interpolation

# The pipelines moved to vitcore.engine.transforms; still importable here until the trainer's set-up
# (vitcore/engine/setup.py) imports them from there.
from vitcore.engine.transforms import eval_transform, train_transform  # noqa: F401  # isort: skip

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError(f"expected [min, max] with min <= max, got {list(pair)}")
    return pair


Probability = Annotated[float, Field(ge=0, le=1)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
FractionRange = Annotated[tuple[Fraction, Fraction], AfterValidator(_ordered)]
PositiveRange = Annotated[tuple[Positive, Positive], AfterValidator(_ordered)]
Channel = Annotated[int, Field(ge=0, le=255)]


# --------------------------------------------------------------------------------------------
# Per-sample augmentations
# --------------------------------------------------------------------------------------------


class RandomResizedCrop(Augmentation):
    """Crop a random area and aspect ratio, resized to the model's input size."""

    name = "random_resized_crop"

    class Options(OptionsBase):
        scale: FractionRange = Field((0.5, 1.0), description="Range of the cropped area, as a fraction of the image.")
        ratio: PositiveRange = Field((3 / 4, 4 / 3), description="Range of the crop's aspect ratio.")

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from vitcore.engine.transforms import RandomResizedCrop as Crop

        pre = ctx.preprocessing
        return Crop(pre.image_size, self.options.scale, self.options.ratio, pre.interpolation)

    def device_transform(self, ctx: AugmentationContext) -> Callable:
        from vitcore.engine.device_transforms import BatchRandomResizedCrop

        # Always bilinear (roi_align), whatever the model's interpolation.
        return BatchRandomResizedCrop(ctx.preprocessing.image_size, self.options.scale, self.options.ratio)


class Resize(Augmentation):
    """Resize the short side to image_size / crop_pct, then centre-crop to the model's input size."""

    name = "resize"

    class Options(OptionsBase):
        crop_pct: Fraction = Field(1.0, description="Resize the short side to size / crop_pct, then centre-crop.")

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        return _resize_center_crop(ctx.preprocessing, self.options.crop_pct)

    def device_transform(self, ctx: AugmentationContext) -> Callable:
        from vitcore.engine.device_transforms import BatchResizeCenterCrop

        pre = ctx.preprocessing
        return BatchResizeCenterCrop(pre.image_size, round(pre.image_size / self.options.crop_pct), pre.interpolation)


class HorizontalFlip(Augmentation):
    """Mirror left-right with probability p."""

    name = "horizontal_flip"

    class Options(OptionsBase):
        p: Probability = Field(0.5, description="Probability of flipping an image.")

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return v2.RandomHorizontalFlip(self.options.p)

    def device_transform(self, ctx: AugmentationContext) -> Callable:
        from vitcore.engine.device_transforms import BatchRandomFlip

        return BatchRandomFlip(self.options.p, dim=-1)


class VerticalFlip(Augmentation):
    """Flip upside down with probability p (for data without a natural up, e.g. aerial images)."""

    name = "vertical_flip"

    class Options(OptionsBase):
        p: Probability = Field(0.5, description="Probability of flipping an image.")

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return v2.RandomVerticalFlip(self.options.p)

    def device_transform(self, ctx: AugmentationContext) -> Callable:
        from vitcore.engine.device_transforms import BatchRandomFlip

        return BatchRandomFlip(self.options.p, dim=-2)


class ColorJitter(Augmentation):
    """Randomly change brightness, contrast, saturation and hue."""

    name = "color_jitter"

    class Options(OptionsBase):
        brightness: float = Field(0.4, ge=0, description="Brightness factor drawn from [1 - x, 1 + x].")
        contrast: float = Field(0.4, ge=0, description="Contrast factor drawn from [1 - x, 1 + x].")
        saturation: float = Field(0.4, ge=0, description="Saturation factor drawn from [1 - x, 1 + x].")
        hue: float = Field(0.0, ge=0, le=0.5, description="Hue shift drawn from [-x, x].")

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        o = self.options
        return v2.ColorJitter(o.brightness, o.contrast, o.saturation, o.hue)


class RandAugment(Augmentation):
    """RandAugment: num_ops random operations of a fixed magnitude (0-30)."""

    name = "rand_augment"

    class Options(OptionsBase):
        num_ops: int = Field(2, ge=1, le=10, description="Operations applied in sequence per image.")
        magnitude: int = Field(9, ge=0, le=30, description="Strength of every operation (0-30).")

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return v2.RandAugment(num_ops=self.options.num_ops, magnitude=self.options.magnitude,
                              interpolation=_warp_interpolation(ctx.preprocessing))


class TrivialAugment(Augmentation):
    """TrivialAugmentWide: one random operation at a random magnitude; no tuning needed."""

    name = "trivial_augment"

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return v2.TrivialAugmentWide(interpolation=_warp_interpolation(ctx.preprocessing))


class AutoAugment(Augmentation):
    """AutoAugment with a policy learnt on ImageNet, CIFAR-10 or SVHN."""

    name = "auto_augment"

    class Options(OptionsBase):
        policy: Literal["imagenet", "cifar10", "svhn"] = Field("imagenet", description="The learned policy to apply.")

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return v2.AutoAugment(v2.AutoAugmentPolicy(self.options.policy),
                              interpolation=_warp_interpolation(ctx.preprocessing))


class RandomErasing(Augmentation):
    """Erase a random rectangle with probability p; list it after the geometric transforms."""

    name = "random_erasing"

    class Options(OptionsBase):
        p: Probability = Field(0.25, description="Probability of erasing a rectangle.")
        scale: FractionRange = Field((0.02, 0.33), description="Range of the erased area, as a fraction of the image.")
        ratio: PositiveRange = Field((0.3, 3.3), description="Range of the erased rectangle's aspect ratio.")
        #: None fills with the model's mean colour, which normalises to 0 (the usual convention).
        value: Channel | tuple[Channel, Channel, Channel] | None = Field(
            None, description="Fill value 0-255 (one or per channel); null: the model's mean colour."
        )

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        o = self.options
        value = o.value if o.value is not None else [round(m * 255) for m in ctx.preprocessing.mean]
        return v2.RandomErasing(p=o.p, scale=o.scale, ratio=o.ratio, value=value)


# --------------------------------------------------------------------------------------------
# Batch augmentations
# --------------------------------------------------------------------------------------------


def _batch(mix: Callable) -> Callable[["torch.Tensor", "torch.Tensor"], tuple["torch.Tensor", "torch.Tensor"]]:
    def apply(images: "torch.Tensor", targets: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        images, soft = mix(images, targets)
        return images, soft.float()

    return apply


class MixUp(Augmentation):
    """MixUp: blend pairs of images and their labels (on the device, per batch)."""

    name = "mixup"

    class Options(OptionsBase):
        alpha: Positive = Field(0.8, description="Beta(alpha, alpha) draws the mixing weight.")

    def batch_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return _batch(v2.MixUp(alpha=self.options.alpha, num_classes=ctx.num_classes))


class CutMix(Augmentation):
    """CutMix: paste a patch of one image into another, labels mixed by area (per batch)."""

    name = "cutmix"

    class Options(OptionsBase):
        alpha: Positive = Field(1.0, description="Beta(alpha, alpha) draws the pasted area's share.")

    def batch_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return _batch(v2.CutMix(alpha=self.options.alpha, num_classes=ctx.num_classes))


@hookimpl
def register_augmentations(register) -> None:
    for component in (RandomResizedCrop, Resize, HorizontalFlip, VerticalFlip, ColorJitter, RandAugment,
                      TrivialAugment, AutoAugment, RandomErasing, MixUp, CutMix):
        register(component)
