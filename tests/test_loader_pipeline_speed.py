"""The loader's fast paths keep what users rely on: the PIL-first pipeline hands plugins uint8
tensors, random_resized_crop draws areas and ratios in the spec's ranges on PIL images and
tensors alike, and loader workers (which skip restoring the random streams) give exactly the
batches a single process gives."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from vitcore.components import Augmentation, AugmentationContext, Preprocessing
from vitcore.engine.data import TransformedDataset
from vitcore.engine.transforms import RandomResizedCrop, train_transform
from vitcore.testing import colour_images

PRE = Preprocessing(16, interpolation="bicubic")
CTX = AugmentationContext(preprocessing=PRE, num_classes=3)


def _builtin(name: str, **options):
    from vitcore.builtin import transforms as T

    component = {"random_resized_crop": T.RandomResizedCrop, "horizontal_flip": T.HorizontalFlip,
                 "color_jitter": T.ColorJitter}[name]
    return component(component.Options(**options))


class Recorder(Augmentation):
    """A plugin's per-sample transform: records what it is given."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list = []

    def sample_transform(self, ctx):
        def record(image):
            self.seen.append(image)
            return image

        return record


def test_plugins_after_torchvision_transforms_get_uint8_tensors_and_the_output_is_a_plain_tensor():
    recorder = Recorder()
    transform = train_transform([_builtin("random_resized_crop"), _builtin("horizontal_flip"), recorder], CTX)
    out = transform(Image.new("RGB", (40, 30), (200, 10, 10)))
    assert type(out) is torch.Tensor and out.dtype == torch.uint8 and out.shape == (3, 16, 16)
    (seen,) = recorder.seen
    assert isinstance(seen, torch.Tensor) and seen.dtype == torch.uint8 and seen.shape == (3, 16, 16)
    assert out[0].float().mean() > 150 and out[1:].float().mean() < 60  # the colours survive


@pytest.mark.parametrize("as_pil", [True, False])
def test_random_resized_crop_draws_within_the_ranges_and_outputs_the_model_size(as_pil):
    crop = RandomResizedCrop(16, (0.25, 0.5), (0.5, 2.0), "bicubic")
    random.seed(0)
    areas, ratios = [], []
    for _ in range(300):
        top, left, h, w = crop.params(60, 80)
        assert 0 <= top <= 60 - h and 0 <= left <= 80 - w
        areas.append(h * w / (60 * 80))
        ratios.append(w / h)
    # Rounding to whole pixels widens the ranges a little.
    assert 0.23 <= min(areas) and max(areas) <= 0.52 and min(areas) < 0.3 and max(areas) > 0.45
    assert 0.45 <= min(ratios) and max(ratios) <= 2.2 and min(ratios) < 0.7 and max(ratios) > 1.5
    assert abs(sum(math.log(r) for r in ratios) / len(ratios)) < 0.15  # log-uniform around 1
    image = Image.new("RGB", (80, 60)) if as_pil else torch.zeros(3, 60, 80, dtype=torch.uint8)
    out = crop(image)
    assert (out.size if as_pil else tuple(out.shape[-2:])) == (16, 16)


def test_random_resized_crop_falls_back_to_the_centre_crop_of_the_nearest_ratio():
    crop = RandomResizedCrop(8, (1.0, 1.0), (1.0, 1.0), "bilinear")  # a square of the whole area cannot fit
    assert crop.params(10, 40) == (0, 15, 10, 10)


def test_pil_and_tensor_crops_of_one_draw_match_closely():
    crop = RandomResizedCrop(16, (0.3, 1.0), (3 / 4, 4 / 3), "bilinear")
    tensor = colour_images(1, 48)[0]
    pil = Image.fromarray(tensor.permute(1, 2, 0).numpy())
    random.seed(3)
    a = torch.from_numpy(np.array(crop(pil))).permute(2, 0, 1).float()
    random.seed(3)
    b = crop(tensor).float()
    assert (a - b).abs().mean() < 6  # Pillow's and torchvision's antialiased resamplers differ by rounding


def test_loader_workers_give_the_batches_a_single_process_gives():
    images = colour_images(24, 24)
    base = [(Image.fromarray(img.permute(1, 2, 0).numpy()), i % 3) for i, img in enumerate(images)]
    transform = train_transform([_builtin("random_resized_crop", scale=(0.2, 1.0)), _builtin("horizontal_flip"),
                                 _builtin("color_jitter")], CTX)
    dataset = TransformedDataset(base, transform, seed=7)
    keys = [[(1, i) for i in range(j, j + 6)] for j in range(0, 24, 6)]

    def batches(workers: int) -> list[torch.Tensor]:
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=keys, num_workers=workers,
                                             generator=torch.Generator().manual_seed(0))  # as the engine does
        return [x for x, _ in loader]

    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    single = batches(0)
    assert torch.equal(torch.rand(3), before), "a single process restores the caller's streams"
    assert all(torch.equal(a, b) for a, b in zip(single, batches(2)))
    assert not torch.equal(single[0][0], single[0][1])
