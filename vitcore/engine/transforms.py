"""The per-sample image pipelines of training and evaluation (PIL RGB image -> uint8 tensor).

Evaluation resizes the short side to ``image_size / crop_pct`` and centre-crops; training runs
the spec's augmentations' sample transforms in order and brings the image to size the same way
if they did not. Normalisation is left to the device (``DeviceNormalize``). torchvision is
imported inside the functions: builtin augmentations import ``interpolation`` from here, and
``vitcore plugins list`` imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from vitcore.components import Augmentation, AugmentationContext, Preprocessing

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = ["FitSize", "RandomResizedCrop", "eval_transform", "interpolation", "resize_center_crop", "train_transform",
           "warp_interpolation"]


def interpolation(pre: Preprocessing) -> Any:
    """The torchvision ``InterpolationMode`` named by ``pre.interpolation``."""
    from torchvision.transforms import InterpolationMode

    return InterpolationMode(pre.interpolation)


def warp_interpolation(pre: Preprocessing) -> Any:
    """The ``InterpolationMode`` for rotations, shears and translations (RandAugment, AutoAugment,
    TrivialAugment) of the pipeline's uint8 tensors.

    torchvision warps tensors with ``grid_sample``, which knows only nearest and bilinear: a timm
    model's default bicubic there raised in every data-loader worker. Bicubic becomes bilinear
    for these warps only; resizes keep the model's own interpolation.
    """
    from torchvision.transforms import InterpolationMode

    mode = InterpolationMode(pre.interpolation)
    return mode if mode in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR) else InterpolationMode.BILINEAR


def resize_center_crop(pre: Preprocessing, crop_pct: float) -> Callable:
    """Resize the short side to ``image_size / crop_pct`` (antialiased), centre-crop ``image_size``."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.Resize(round(pre.image_size / crop_pct), interpolation=interpolation(pre), antialias=True),
        v2.CenterCrop(pre.image_size),
    ])


class FitSize:
    """Bring an image to ``size`` x ``size`` only if the augmentations did not already.

    Resizes the short side and centre-crops, as evaluation does, so the aspect ratio seen in
    training matches evaluation. A plain class so data-loader workers can pickle it.
    """

    def __init__(self, pre: Preprocessing) -> None:
        self.size = pre.image_size
        self.fit = resize_center_crop(pre, pre.crop_pct)

    def __call__(self, image: "torch.Tensor") -> "torch.Tensor":
        if tuple(image.shape[-2:]) == (self.size, self.size):
            return image
        return self.fit(image)


def eval_transform(pre: Preprocessing) -> Callable:
    """PIL RGB image -> uint8 ``(3, s, s)`` tensor: resize short side to s / crop_pct, centre-crop s."""
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), resize_center_crop(pre, pre.crop_pct), v2.ToPureTensor()])


class RandomResizedCrop:
    """torchvision's random resized crop (the same area and aspect-ratio draws, ten tries, then
    the centre crop of the nearest ratio), drawn with Python's ``random`` and cut and resized by
    Pillow in one ``resize(box=...)`` on a PIL image (timm's way): torchvision's v2 transform
    drew its parameters with small torch ops and cost 2.5 times as much per image. Tensors (a
    decoded cache) are cut and resized by torchvision, antialiased. A plain class: workers pickle it.
    """

    accepts_pil = True

    def __init__(self, size: int, scale: tuple[float, float], ratio: tuple[float, float], interpolation: str) -> None:
        self.size, self.scale, self.ratio, self.interpolation = size, tuple(scale), tuple(ratio), interpolation

    def params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of the crop."""
        import math
        import random

        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return random.randint(0, height - h), random.randint(0, width - w), h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h, w = height, int(round(height * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, image: Any) -> Any:
        from PIL import Image

        if isinstance(image, Image.Image):
            top, left, h, w = self.params(image.height, image.width)
            resample = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                        "bicubic": Image.Resampling.BICUBIC}[self.interpolation]
            return image.resize((self.size, self.size), resample, box=(left, top, left + w, top + h))
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        top, left, h, w = self.params(*image.shape[-2:])
        return F.resized_crop(image, top, left, h, w, [self.size, self.size],
                              interpolation=InterpolationMode(self.interpolation), antialias=True)

    def __repr__(self) -> str:
        return (f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"interpolation={self.interpolation})")


def _as_tensor(image: Any) -> "torch.Tensor":
    """PIL image or tensor -> plain uint8 ``(C, H, W)`` tensor (half the cost of v2's ToImage,
    ToPureTensor pair, which wraps and unwraps a tv_tensor)."""
    import torch
    from PIL import Image

    if isinstance(image, Image.Image):
        from torchvision.transforms.functional import pil_to_tensor

        return pil_to_tensor(image)
    return image.as_subclass(torch.Tensor) if type(image) is not torch.Tensor else image


#: torchvision v2 transforms that work on PIL images with Pillow's own kernels (what timm's
#: training pipeline runs on): crops, resizes, flips, colour changes and the policy augmentations.
_PIL_NATIVE = ("RandomResizedCrop", "Resize", "CenterCrop", "RandomCrop", "RandomHorizontalFlip",
               "RandomVerticalFlip", "ColorJitter", "RandAugment", "TrivialAugmentWide", "AutoAugment",
               "AugMix", "RandomGrayscale")


def _on_pil(transform: Any) -> bool:
    """Whether ``transform`` is one of torchvision's that take PIL images (a Compose of them too)."""
    from torchvision.transforms import v2

    if isinstance(transform, v2.Compose):
        return all(_on_pil(t) for t in transform.transforms)
    if getattr(transform, "accepts_pil", False):
        return True
    return isinstance(transform, v2.Transform) and type(transform).__name__ in _PIL_NATIVE and \
        type(transform).__module__.startswith("torchvision.")


def train_transform(augmentations: Sequence[Augmentation], ctx: AugmentationContext) -> Callable:
    """PIL RGB image -> uint8 ``(3, s, s)`` tensor: the augmentations' sample transforms in order.

    List a geometric transform (random_resized_crop, resize) first: the others then work on
    small images. Without one, the image is brought to size at the end as in evaluation.

    The leading torchvision transforms run on the PIL image while it is one (Pillow's resize and
    colour operations cost half of the tensor kernels' on small images, which made the loader,
    not the model, set the pace of a CPU run); the first other transform, and every one after
    it, gets the uint8 tensor plugins are promised. A decoded cache hands tensors in: then every
    transform runs on tensors.
    """
    from torchvision.transforms import v2

    steps = [t for t in (a.sample_transform(ctx) for a in augmentations) if t is not None]
    lead = 0
    while lead < len(steps) and _on_pil(steps[lead]):
        lead += 1
    return v2.Compose([*steps[:lead], _as_tensor, *steps[lead:], FitSize(ctx.preprocessing), _as_tensor])
