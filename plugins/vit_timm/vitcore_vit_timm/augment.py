"""timm's training augmentations as vitcore components: RandAugment, Mixup/CutMix, RandomErasing.

RandAugment runs per sample in the data loader (timm's works on PIL images); Mixup and
RandomErasing run per batch on the device, on the normalised images, as in timm's train script.
torch and timm are imported inside functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import Field, ValidationInfo, field_validator

from vitcore.api import Augmentation, AugmentationContext, Options as OptionsBase

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

Batch = tuple["torch.Tensor", "torch.Tensor"]


# --------------------------------------------------------------------------------------------
# RandAugment (per sample)
# --------------------------------------------------------------------------------------------


class TimmRandAugment(Augmentation):
    """timm RandAugment from a policy string such as rand-m9-mstd0.5-inc1."""

    name = "timm_rand_augment"

    class Options(OptionsBase):
        config_str: str = Field(
            "rand-m9-mstd0.5-inc1",
            description="timm policy: rand, then m<magnitude>, n<ops per image>, mstd<magnitude noise>, "
                        "inc<0|1 ops that grow with magnitude>, p<probability per op>, separated by '-'.")

        @field_validator("config_str")
        @classmethod
        def _parses(cls, config_str: str) -> str:
            from timm.data.auto_augment import rand_augment_transform

            try:
                rand_augment_transform(config_str, {})
            except Exception as exc:  # timm reports bad policies with asserts and ValueErrors
                reason = str(exc) or "an unknown section"
                raise ValueError(f"{config_str!r} is not a timm RandAugment policy ({reason}); "
                                 "e.g. rand-m9-mstd0.5-inc1") from None
            return config_str

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from timm.data.auto_augment import rand_augment_transform
        from timm.data.transforms import str_to_pil_interp

        pre = ctx.preprocessing
        # The hyper-parameters timm's create_transform gives RandAugment for this model's input.
        hparams = {"translate_const": int(pre.image_size * 0.45),
                   "img_mean": tuple(min(255, round(255 * m)) for m in pre.mean),
                   "interpolation": str_to_pil_interp(pre.interpolation)}
        return OnPIL(_zero_bits_allowed(rand_augment_transform(self.options.config_str, hparams)))


def _zero_bits_allowed(rand_augment: Any) -> Any:
    """Swap timm's posterize for one that accepts 0 bits.

    At the top of its magnitude range (PosterizeIncreasing) or the bottom (Posterize) timm asks
    Pillow to keep 0 bits; recent Pillow (13) raises there, older Pillow returned a black image. With
    the default policy's magnitude noise that is 1-2 images per thousand: a crash in every epoch.
    """
    from timm.data import auto_augment

    for op in rand_augment.ops:
        if op.aug_fn is auto_augment.posterize:
            op.aug_fn = posterize
    return rand_augment


def posterize(image: Any, bits_to_keep: int, **kwargs: Any) -> Any:
    """timm's posterize; 0 bits gives the black image older Pillow gave."""
    from PIL import Image
    from timm.data import auto_augment

    if bits_to_keep < 1:
        return Image.new(image.mode, image.size)
    return auto_augment.posterize(image, bits_to_keep, **kwargs)


class OnPIL:
    """Runs a PIL-only transform in vitcore's tensor pipeline: uint8 tensor -> PIL -> uint8 tensor.

    A plain class so data-loader workers can pickle it.
    """

    def __init__(self, transform: Callable[[Any], Any]) -> None:
        self.transform = transform

    def __call__(self, image: "torch.Tensor") -> "torch.Tensor":
        from torchvision.transforms.v2 import functional as F

        return F.pil_to_tensor(self.transform(F.to_pil_image(image)))


# --------------------------------------------------------------------------------------------
# Mixup / CutMix (per batch)
# --------------------------------------------------------------------------------------------


class TimmMixup(Augmentation):
    """timm Mixup/CutMix: blend or paste pairs of images and mix their labels (per batch)."""

    name = "timm_mixup"

    class Options(OptionsBase):
        mixup_alpha: float = Field(0.8, ge=0, description="Beta(alpha, alpha) draws the mixup weight; 0: no mixup.")
        cutmix_alpha: float = Field(1.0, ge=0, description="Beta(alpha, alpha) draws the cutmix area; 0: no cutmix.")
        prob: float = Field(1.0, ge=0, le=1, description="Probability of mixing a batch (or element).")
        switch_prob: float = Field(0.5, ge=0, le=1, description="Probability of cutmix instead of mixup when both are on.")
        mode: Literal["batch", "pair", "elem"] = Field(
            "batch", description="batch: one draw per batch; pair: per pair of images; elem: per image.")
        label_smoothing: float = Field(
            0.0, ge=0, lt=1, description="timm's smoothing of the mixed targets; train.label_smoothing already "
                                         "smooths every target, so set one of the two.")

        @field_validator("cutmix_alpha")
        @classmethod
        def _something_mixes(cls, cutmix_alpha: float, info: ValidationInfo) -> float:
            if cutmix_alpha == 0 and info.data.get("mixup_alpha") == 0:
                raise ValueError("mixup_alpha and cutmix_alpha are both 0; set one above 0")
            return cutmix_alpha

    def batch_transform(self, ctx: AugmentationContext) -> Callable[["torch.Tensor", "torch.Tensor"], Batch]:
        from timm.data import Mixup

        o = self.options
        mixup = Mixup(mixup_alpha=o.mixup_alpha, cutmix_alpha=o.cutmix_alpha, prob=o.prob,
                      switch_prob=o.switch_prob, mode=o.mode, label_smoothing=o.label_smoothing,
                      num_classes=ctx.num_classes)
        return EvenBatchMixup(mixup)


class EvenBatchMixup:
    """timm's Mixup, which pairs image i with image B-1-i and so needs an even batch. Of an odd
    batch (an odd batch_size, or a short last batch) the last image passes unmixed, with the same
    (smoothed) soft targets, and the rest is mixed."""

    def __init__(self, mixup: Any) -> None:
        self.mixup = mixup

    def __call__(self, images: "torch.Tensor", targets: "torch.Tensor") -> Batch:
        import torch
        from timm.data.mixup import mixup_target

        if len(images) % 2 == 0:
            return self.mixup(images, targets)
        last = mixup_target(targets[-1:], self.mixup.num_classes, smoothing=self.mixup.label_smoothing)
        if len(images) == 1:
            return images, last
        mixed, soft = self.mixup(images[:-1], targets[:-1])
        return torch.cat([mixed, images[-1:]]), torch.cat([soft, last])


# --------------------------------------------------------------------------------------------
# RandomErasing (per batch)
# --------------------------------------------------------------------------------------------


class TimmRandomErasing(Augmentation):
    """timm RandomErasing on the normalised batch: rectangles of noise (pixel/rand) or zeros (const)."""

    name = "timm_random_erasing"

    class Options(OptionsBase):
        prob: float = Field(0.25, ge=0, le=1, description="Probability of erasing in an image.")
        mode: Literal["pixel", "rand", "const"] = Field(
            "pixel", description="Fill: pixel (normal noise per pixel), rand (one normal colour), const (zeros, "
                                 "the mean colour after normalisation).")
        min_area: float = Field(0.02, gt=0, le=1, description="Smallest erased area, as a fraction of the image.")
        max_area: float = Field(1 / 3, gt=0, le=1, description="Largest erased area, as a fraction of the image.")
        min_aspect: float = Field(0.3, gt=0, description="Smallest aspect ratio of a rectangle.")
        max_aspect: float | None = Field(None, gt=0, description="Largest aspect ratio; null: 1 / min_aspect.")
        min_count: int = Field(1, ge=1, description="Fewest rectangles per erased image.")
        max_count: int | None = Field(None, ge=1, description="Most rectangles per erased image; null: min_count.")

        @field_validator("max_area")
        @classmethod
        def _area_range(cls, max_area: float, info: ValidationInfo) -> float:
            if max_area < info.data.get("min_area", 0):
                raise ValueError(f"max_area {max_area} is below min_area {info.data['min_area']}")
            return max_area

        @field_validator("max_count")
        @classmethod
        def _count_range(cls, max_count: int | None, info: ValidationInfo) -> int | None:
            if max_count is not None and max_count < info.data.get("min_count", 1):
                raise ValueError(f"max_count {max_count} is below min_count {info.data['min_count']}")
            return max_count

    def batch_transform(self, ctx: AugmentationContext) -> Callable[["torch.Tensor", "torch.Tensor"], Batch]:
        return BatchErasing(self.options, ctx.num_classes)


class BatchErasing:
    """Erases in place on the batch's device; targets come back one-hot, as soft targets.

    timm's RandomErasing takes its device at construction and the batch's is only known here;
    constructing one only stores the settings, so each call makes its own.
    """

    def __init__(self, options: TimmRandomErasing.Options, num_classes: int) -> None:
        self.options = options
        self.num_classes = num_classes

    def __call__(self, images: "torch.Tensor", targets: "torch.Tensor") -> Batch:
        import torch
        from timm.data.random_erasing import RandomErasing

        o = self.options
        erase = RandomErasing(probability=o.prob, min_area=o.min_area, max_area=o.max_area, min_aspect=o.min_aspect,
                              max_aspect=o.max_aspect, mode=o.mode, min_count=o.min_count, max_count=o.max_count,
                              device=images.device)
        return erase(images), torch.nn.functional.one_hot(targets, self.num_classes).float()
