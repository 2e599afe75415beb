"""Built-in augmentations and the train/eval pipelines on real PIL images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from vitcore.builtin import transforms as T
from vitcore.components import AugmentationContext, Preprocessing
from vitcore.engine.transforms import eval_transform, train_transform

SIZE = 32
CTX = AugmentationContext(preprocessing=Preprocessing(SIZE), num_classes=5)
SAMPLE = [T.RandomResizedCrop, T.Resize, T.HorizontalFlip, T.VerticalFlip, T.ColorJitter, T.RandAugment,
          T.TrivialAugment, T.AutoAugment, T.RandomErasing]


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def as_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def check(image: torch.Tensor, size: int = SIZE) -> None:
    assert type(image) is torch.Tensor
    assert image.dtype == torch.uint8 and image.shape == (3, size, size)


@pytest.mark.parametrize("component", SAMPLE, ids=lambda c: c.name)
@pytest.mark.parametrize("width, height", [(50, 40), (17, 90), (20, 20)])
def test_every_augmentation_gives_model_size(component, width, height):
    transform = train_transform([component()], CTX)
    check(transform(photo(width, height)))


@pytest.mark.parametrize("component", [T.RandomResizedCrop, T.Resize])
def test_geometric_augmentations_output_model_size_themselves(component):
    image = as_tensor(photo(70, 45))
    assert component().sample_transform(CTX)(image).shape == (3, SIZE, SIZE)


def test_train_transform_chains_in_order_and_resizes_only_when_needed():
    augs = [T.RandomResizedCrop(), T.HorizontalFlip(T.HorizontalFlip.Options(p=1.0)),
            T.ColorJitter(), T.RandomErasing(T.RandomErasing.Options(p=1.0))]
    check(train_transform(augs, CTX)(photo(64, 48)))
    flip = train_transform([T.HorizontalFlip(T.HorizontalFlip.Options(p=1.0))], CTX)
    image = photo(SIZE, SIZE)
    expected = as_tensor(image).flip(-1)
    assert torch.equal(flip(image), expected)  # already the model's size: untouched by the fit step
    check(train_transform([], CTX)(photo(100, 30)))


def test_random_erasing_defaults_to_the_mean_colour():
    erase = T.RandomErasing(T.RandomErasing.Options(p=1.0, scale=(0.5, 0.5))).sample_transform(CTX)
    image = torch.full((3, SIZE, SIZE), 7, dtype=torch.uint8)
    assert set(erase(image).unique().tolist()) == {7, 128}  # round(0.5 * 255)


@pytest.mark.parametrize("crop_pct", [1.0, 0.875])
def test_eval_transform(crop_pct):
    pre = Preprocessing(SIZE, interpolation="bicubic", crop_pct=crop_pct)
    for width, height in [(100, 50), (20, 31), (SIZE, SIZE)]:
        check(eval_transform(pre)(photo(width, height)))


def test_eval_transform_centre_crops():
    pixels = np.full((64, SIZE, 3), 255, dtype=np.uint8)
    pixels[16:48] = 0  # white top and bottom quarters, black centre
    assert eval_transform(Preprocessing(SIZE))(Image.fromarray(pixels)).max() == 0


@pytest.mark.parametrize("component", [T.MixUp, T.CutMix])
def test_batch_augmentations_give_soft_targets(component):
    mix = component().batch_transform(CTX)
    assert component().sample_transform(CTX) is None
    images = torch.randn(6, 3, SIZE, SIZE)
    mixed, soft = mix(images, torch.tensor([0, 1, 2, 3, 4, 0]))
    assert mixed.shape == images.shape and mixed.dtype == torch.float32
    assert soft.shape == (6, 5) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(dim=1), torch.ones(6))


@pytest.mark.parametrize(
    "component, options, field",
    [
        (T.HorizontalFlip, {"p": 1.5}, "p"),
        (T.RandomResizedCrop, {"scale": (0.9, 0.1)}, "min <= max"),
        (T.RandomResizedCrop, {"scale": (0.0, 1.0)}, "scale"),
        (T.RandomResizedCrop, {"ratio": (-1, 2)}, "ratio"),
        (T.Resize, {"crop_pct": 1.2}, "crop_pct"),
        (T.ColorJitter, {"hue": 0.7}, "hue"),
        (T.RandAugment, {"magnitude": 31}, "magnitude"),
        (T.AutoAugment, {"policy": "mnist"}, "policy"),
        (T.RandomErasing, {"value": 300}, "value"),
        (T.MixUp, {"alpha": 0}, "alpha"),
        (T.CutMix, {"alhpa": 1}, "alhpa"),
    ],
)
def test_options_validation(component, options, field):
    with pytest.raises(ValidationError, match=field):
        component.Options(**options)


def test_option_lists_from_a_spec():
    assert T.RandomErasing.Options(value=[1, 2, 3], scale=[0.1, 0.2]).value == (1, 2, 3)


def test_modules_import_without_torch():
    code = ("import sys, vitcore.builtin.transforms, vitcore.builtin.models; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_warps_fall_back_to_bilinear_and_resizes_keep_bicubic():
    from torchvision.transforms import InterpolationMode

    from vitcore.api import Preprocessing
    from vitcore.engine.transforms import interpolation, warp_interpolation

    bicubic = Preprocessing(32, interpolation="bicubic")
    assert interpolation(bicubic) is InterpolationMode.BICUBIC
    assert warp_interpolation(bicubic) is InterpolationMode.BILINEAR
    assert warp_interpolation(Preprocessing(32, interpolation="nearest")) is InterpolationMode.NEAREST
