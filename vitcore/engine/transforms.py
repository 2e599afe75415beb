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

__all__ = ["FitSize", "eval_transform", "interpolation", "resize_center_crop", "train_transform", "warp_interpolation"]


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
    return v2.Compose([*steps[:lead], v2.ToImage(), *steps[lead:], FitSize(ctx.preprocessing), v2.ToPureTensor()])
