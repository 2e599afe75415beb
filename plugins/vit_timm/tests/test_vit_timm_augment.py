"""timm's RandAugment, Mixup/CutMix and RandomErasing as vitcore augmentations."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from vitcore_vit_timm.augment import TimmMixup, TimmRandAugment, TimmRandomErasing

from vitcore.api import AugmentationContext, Preprocessing
from vitcore.testing import check_augmentation, colour_images

CTX = AugmentationContext(preprocessing=Preprocessing(32), num_classes=3)


@pytest.mark.parametrize(("component", "options"), [
    (TimmRandAugment, None),
    (TimmRandAugment, {"config_str": "rand-m15-n3-mstd1-inc0-tweights"}),
    (TimmMixup, None),
    (TimmMixup, {"mixup_alpha": 0, "cutmix_alpha": 1.0, "mode": "elem", "label_smoothing": 0.1}),
    (TimmRandomErasing, None),
    (TimmRandomErasing, {"prob": 1.0, "mode": "const", "max_count": 3}),
])
def test_the_augmentations_keep_vitcores_contract(component, options):
    check_augmentation(component, options)


def test_rand_augment_changes_uint8_images_and_pickles_for_loader_workers():
    transform = TimmRandAugment(TimmRandAugment.Options(config_str="rand-m9-n2-mstd0-p1")).sample_transform(CTX)
    transform = pickle.loads(pickle.dumps(transform))
    random.seed(0)  # timm draws the operations with Python's random
    images = colour_images(8, 32)
    out = [transform(image) for image in images]
    assert all(o.dtype == torch.uint8 and o.shape == (3, 32, 32) for o in out)
    assert sum(not torch.equal(o, i) for o, i in zip(out, images)) >= 6


def test_rand_augment_survives_posterize_at_zero_bits():
    """PosterizeIncreasing at magnitude 10 keeps 0 bits, which Pillow 13 refuses; the image turns black."""
    transform = TimmRandAugment(TimmRandAugment.Options(config_str="rand-m10-n3-p1-inc1")).sample_transform(CTX)
    random.seed(0)
    out = [transform(image) for image in colour_images(40, 16)]  # posterize is drawn ~20 times
    assert any(not o.any() for o in out), "some image was posterized to black"


def _normalised(count: int) -> torch.Tensor:
    return (colour_images(count, 16).float() / 255 - 0.5) / 0.5


def test_mixup_mixes_an_even_batch_into_soft_targets():
    mix = TimmMixup(TimmMixup.Options(cutmix_alpha=0, mixup_alpha=1.0)).batch_transform(CTX)
    images, targets = _normalised(4), torch.tensor([0, 1, 2, 2])
    np.random.seed(0)  # timm draws the mixing weight with numpy
    mixed, soft = mix(images.clone(), targets)
    assert soft.dtype == torch.float32 and soft.shape == (4, 3)
    assert torch.allclose(soft.sum(dim=1), torch.ones(4))
    lam = soft[0, 0].item()  # image i is blended with image 3 - i: 0 (class 0) with 3 (class 2) ...
    assert soft[0, 2].item() == pytest.approx(1 - lam)
    assert soft[1, 1].item() == pytest.approx(lam)  # ... and 1 (class 1) with 2 (class 2)
    assert 0 < lam < 1 and torch.allclose(mixed, lam * images + (1 - lam) * images.flip(0), atol=1e-5)


def test_mixup_mixes_an_odd_batch_but_its_last_image_which_gets_smoothed_one_hot_targets():
    mix = TimmMixup(TimmMixup.Options(cutmix_alpha=0, label_smoothing=0.3)).batch_transform(CTX)
    images, targets = _normalised(5), torch.tensor([0, 1, 2, 2, 1])
    np.random.seed(0)
    out, soft = mix(images.clone(), targets)
    assert torch.equal(out[4], images[4]) and torch.allclose(soft[4], torch.tensor([0.1, 0.8, 0.1]))
    assert not torch.equal(out[:4], images[:4]) and torch.allclose(soft.sum(dim=1), torch.ones(5))
    lam = (soft[0, 0].item() - 0.1) / 0.7  # image 0 (class 0) is blended with image 3 (class 2)
    assert torch.allclose(out[0], lam * images[0] + (1 - lam) * images[3], atol=1e-5)

    single, soft = mix(images[:1].clone(), targets[:1])
    assert torch.equal(single, images[:1]) and torch.allclose(soft, torch.tensor([[0.8, 0.1, 0.1]]))


def test_random_erasing_erases_in_the_normalised_batch_and_keeps_the_labels():
    erase = TimmRandomErasing(TimmRandomErasing.Options(prob=1.0, mode="const")).batch_transform(CTX)
    images = _normalised(4) + 5  # no pixel is 0 before erasing
    out, soft = erase(images.clone(), torch.tensor([0, 1, 2, 1]))
    assert torch.equal(soft, torch.eye(3)[[0, 1, 2, 1]])
    erased = out == 0
    assert all(erased[i].any() for i in range(4)), "each image got a rectangle of zeros (the mean colour)"
    assert torch.equal(out[~erased], images[~erased])
