"""train.augment: device: the built-in augmentations batched on the device, each image with its own
random parameters, and runs that learn with them in every decode mode. All on the CPU with real
tensors and real runs; the CUDA test is skipped without a GPU."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2

import vitcore
from vitcore.builtin.transforms import (
    ColorJitter,
    HorizontalFlip,
    MixUp,
    RandomResizedCrop,
    Resize,
)
from vitcore.components import Augmentation, AugmentationContext, Preprocessing
from vitcore.engine.data import DeviceNormalize
from vitcore.engine.decoded_cache import cache_side
from vitcore.engine.device_augment import (
    DeviceAugment,
    PassThrough,
    SquareImage,
    device_steps,
    loader_transform,
)
from vitcore.engine.device_transforms import (
    BatchRandomFlip,
    BatchRandomResizedCrop,
    BatchResizeCenterCrop,
    crop_resize,
    sample_crop_params,
)
from vitcore.engine.harness import engine_epoch, make_setup
from vitcore.engine.trainer import train
from vitcore.engine.transforms import eval_transform
from vitcore.errors import VitcoreError
from vitcore.plugins import api_satisfies
from vitcore.spec import load_dict
from vitcore.testing import check_augmentation, colour_images, tiny_spec

CPU = torch.device("cpu")
PRE = Preprocessing(32, crop_pct=0.8)  # S = 40
CTX = AugmentationContext(PRE, num_classes=3)


def noise(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """``count`` copies of one random uint8 picture: any difference between outputs is the transform's."""
    picture = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return picture.expand(count, -1, -1, -1).contiguous()


def smooth(height: int, width: int) -> torch.Tensor:
    """A float (1, 3, H, W) picture of slow waves, 0-255: bilinear sampling differences stay small."""
    y = torch.arange(height, dtype=torch.float32).view(-1, 1)
    x = torch.arange(width, dtype=torch.float32).view(1, -1)
    channels = [127 + 100 * torch.sin(x / 5 + k) * torch.cos(y / 7 - k) for k in range(3)]
    return torch.stack(channels).unsqueeze(0)


# --------------------------------------------------------------------------------------------
# The transforms
# --------------------------------------------------------------------------------------------


def test_random_resized_crop_crops_each_image_differently():
    torch.manual_seed(0)
    images = noise(16, 40)
    out = RandomResizedCrop().device_transform(CTX)(images)
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.uint8
    distinct = {out[i].numpy().tobytes() for i in range(16)}
    assert len(distinct) == 16, "the images of one batch got the same crop"
    floats = RandomResizedCrop().device_transform(CTX)(images.float())
    assert floats.dtype == torch.float32 and floats.shape == (16, 3, 32, 32)
    assert floats.min() >= images.min() - 1e-3 and floats.max() <= images.max() + 1e-3


def test_crop_parameters_fall_in_scale_and_ratio_like_torchvision():
    height, width, scale, ratio = 480, 640, (0.25, 0.8), (0.6, 1.5)
    params = sample_crop_params(20_000, height, width, scale, ratio, generator=torch.Generator().manual_seed(0))
    top, left, crop_h, crop_w = params.unbind(1)
    area = crop_h * crop_w / (height * width)
    aspect = crop_w / crop_h
    # Sides are rounded to whole pixels (as torchvision does): allow that much.
    assert area.min() >= scale[0] * 0.99 and area.max() <= scale[1] * 1.01
    assert aspect.min() >= ratio[0] * 0.99 and aspect.max() <= ratio[1] * 1.01
    assert torch.equal(params, params.round()) and top.min() >= 0 and left.min() >= 0
    assert (top + crop_h).max() <= height and (left + crop_w).max() <= width
    assert len(set(top.tolist())) > 100 and len(set(left.tolist())) > 100  # one draw per image
    # The same distribution as torchvision's own draws (large areas at extreme ratios do not fit
    # and are drawn again, in both), not merely the same range.
    reference = v2.RandomResizedCrop(32, scale=scale, ratio=ratio)
    torch.manual_seed(0)
    drawn = [reference.make_params([torch.zeros(3, height, width)]) for _ in range(4000)]
    theirs = torch.tensor([[p["height"], p["width"]] for p in drawn], dtype=torch.float32)
    assert abs(area.mean() - (theirs[:, 0] * theirs[:, 1]).mean() / (height * width)) < 0.01
    assert abs(aspect.log().mean() - (theirs[:, 1] / theirs[:, 0]).log().mean()) < 0.02


def test_crop_falls_back_to_torchvisions_centre_crop_when_nothing_fits():
    # A 10 x 100 strip cannot hold 90% of its area at aspect ratio <= 4/3: every draw fails.
    params = sample_crop_params(50, 10, 100, (0.9, 1.0), (3 / 4, 4 / 3))
    expected = v2.RandomResizedCrop(8, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3)).make_params([torch.zeros(3, 10, 100)])
    row = torch.tensor([expected["top"], expected["left"], expected["height"], expected["width"]], dtype=torch.float32)
    assert torch.equal(params, row.expand(50, 4))


def test_a_box_over_the_whole_image_is_plain_bilinear_interpolation():
    picture = smooth(24, 24)
    whole = torch.tensor([[0.0, 0.0, 24.0, 24.0]])
    for size in (40, 24):  # enlarging and the same size: one sample per pixel, exactly interpolate's
        out = crop_resize(picture, whole, size)
        reference = F.interpolate(picture, size=(size, size), mode="bilinear", align_corners=False)
        torch.testing.assert_close(out, reference, atol=1e-3, rtol=0)
    shrunk = crop_resize(picture, whole, 16)  # 1.5x smaller: two samples per pixel and axis, averaged
    reference = F.interpolate(picture, size=(16, 16), mode="bilinear", align_corners=False)
    assert (shrunk - reference).abs().mean() < 1.0 and (shrunk - reference).abs().max() < 4.0
    as_uint8 = crop_resize(picture.round().to(torch.uint8), whole, 40)
    assert as_uint8.dtype == torch.uint8
    assert (as_uint8.float() - F.interpolate(picture.round(), size=(40, 40), mode="bilinear")).abs().max() <= 0.51


def test_a_crop_matches_torchvisions_resized_crop():
    picture = smooth(40, 40).round().to(torch.uint8)
    params = torch.tensor([[4.0, 6.0, 20.0, 24.0]])
    out = crop_resize(picture, params, 32)
    reference = v2.functional.resized_crop(picture[0], 4, 6, 20, 24, [32, 32], antialias=True)
    inner = (out[0].float() - reference.float())[:, 2:-2, 2:-2]  # the borders see pixels outside the crop
    assert inner.abs().max() <= 2


@pytest.mark.parametrize("dim", [-1, -2])
def test_flips_pick_each_image_with_probability_p(dim):
    torch.manual_seed(0)
    count = 4000
    images = torch.arange(3 * 2 * 3, dtype=torch.uint8).view(1, 3, 2, 3).expand(count, -1, -1, -1)
    out = BatchRandomFlip(0.3, dim)(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    flipped = (out == images.flip(dim)).flatten(1).all(dim=1)
    kept = (out == images).flatten(1).all(dim=1)
    assert bool((flipped | kept).all()), "every image is either flipped or left alone"
    assert abs(flipped.float().mean().item() - 0.3) < 0.03
    assert torch.equal(BatchRandomFlip(0.0, dim)(images), images)
    assert torch.equal(BatchRandomFlip(1.0, dim)(images.float()), images.flip(dim).float())


def test_the_built_in_flips_have_device_versions():
    from vitcore.builtin.transforms import VerticalFlip

    images = noise(2, 8)
    assert torch.equal(HorizontalFlip(HorizontalFlip.Options(p=1.0)).device_transform(CTX)(images), images.flip(-1))
    assert torch.equal(VerticalFlip(VerticalFlip.Options(p=1.0)).device_transform(CTX)(images), images.flip(-2))


def test_resize_on_the_device_matches_the_loaders_resize():
    images = colour_images(3, 50, 70)
    out = Resize(Resize.Options(crop_pct=0.8)).device_transform(CTX)(images)
    reference = torch.stack([Resize(Resize.Options(crop_pct=0.8)).sample_transform(CTX)(image) for image in images])
    assert out.shape == reference.shape == (3, 3, 32, 32) and out.dtype == torch.uint8
    assert (out.int() - reference.int()).abs().max() <= 1  # float resampling vs torchvision's uint8 kernel
    floats = BatchResizeCenterCrop(32, 40, "bicubic")(images.float())
    assert floats.shape == (3, 3, 32, 32) and floats.dtype == torch.float32


def test_only_the_geometric_built_ins_have_device_versions():
    for augmentation in (RandomResizedCrop(), Resize(), HorizontalFlip()):
        check_augmentation(type(augmentation))  # the contract check exercises device_transform too
    assert ColorJitter().device_transform(CTX) is None and MixUp().device_transform(CTX) is None


# --------------------------------------------------------------------------------------------
# The engine side
# --------------------------------------------------------------------------------------------


def test_the_loader_delivers_the_square_and_the_device_pipeline_matches_evaluation(tmp_path):
    side = cache_side(PRE)
    picture = Image.fromarray(colour_images(1, 50, 70)[0].permute(1, 2, 0).numpy())
    square = loader_transform("loader", PRE)(picture)
    assert square.shape == (3, side, side) and square.dtype == torch.uint8
    assert isinstance(loader_transform("cache", PRE), PassThrough)
    assert torch.equal(SquareImage(PRE)(square), square)  # already the square: nothing changes
    # No geometric augmentation: the engine's fit is the eval transform's centre crop of the square.
    normalize = DeviceNormalize(PRE, CPU)
    pipeline = DeviceAugment([], PRE, normalize, CPU)
    expected = normalize(eval_transform(PRE)(picture).unsqueeze(0))
    torch.testing.assert_close(pipeline(square.unsqueeze(0)), expected)


def test_device_steps_skip_batch_only_augmentations_and_refuse_ones_without_a_device_version():
    steps = device_steps([RandomResizedCrop(), MixUp(), HorizontalFlip()], CTX)
    assert [type(s) for s in steps] == [BatchRandomResizedCrop, BatchRandomFlip]
    with pytest.raises(VitcoreError, match=r"augmentations\[1\] \(color_jitter\) has no device version"):
        device_steps([HorizontalFlip(), ColorJitter()], CTX)


def _run_spec(tmp_path: Path, **train_options) -> dict:
    spec = tiny_spec(tmp_path, epochs=3, augment="device", **train_options)
    spec["augmentations"] = [{"type": "random_resized_crop"}, {"type": "horizontal_flip"}]
    spec.update(sinks=[], visualizers=[], exporters=[])
    return spec


@pytest.mark.parametrize("decode", ["loader", "cache", "device"])
def test_a_run_with_device_augmentation_learns(tmp_path, decode, monkeypatch):
    seen = []
    original = DeviceAugment.augment

    def recording(self, images):
        seen.append(tuple(images.shape[-2:]))  # what the loader delivered
        return original(self, images)

    monkeypatch.setattr(DeviceAugment, "augment", recording)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision's decoders (decode device)
        result = train(load_dict(_run_spec(tmp_path, decode=decode)))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["best_value"] >= 0.9
    assert json.loads((result.run_dir / "spec.json").read_text())["train"]["augment"] == "device"
    side = cache_side(Preprocessing(32))  # TINY_VIT: 32 px, crop_pct 1
    assert seen and set(seen) == {(side, side)}


def test_an_augmentation_without_a_device_version_fails_before_the_run_starts(tmp_path):
    spec = _run_spec(tmp_path)
    spec["augmentations"].append({"type": "color_jitter"})
    with pytest.raises(VitcoreError) as caught:
        train(load_dict(spec))
    assert str(caught.value) == ("train.augment: 'device' needs every augmentation to run on the device; "
                                 "augmentations[2] (color_jitter) has no device version. Remove it or use augment 'loader'")
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.rglob("*")), "a run directory was left behind"


def test_the_hot_loop_with_device_augmentation_reads_nothing_per_step(monkeypatch):
    setup = make_setup("vit_cpu_small", batch=4, steps=12, log_every_steps=5)
    pre = Preprocessing(64)
    steps = device_steps([RandomResizedCrop(), HorizontalFlip()], AugmentationContext(pre, 10))
    setup.normalize = DeviceAugment(steps, pre, setup.normalize, CPU)
    package = str(Path(vitcore.__file__).parent)
    calls = []
    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            if sys._getframe(1).f_code.co_filename.startswith(package):
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    engine_epoch(setup, 12)
    assert calls == ["tolist"] * 3  # the two logging intervals and the epoch's end, as without it


def test_plugins_written_for_earlier_api_versions_still_load():
    assert vitcore.PLUGIN_API_VERSION == "1.3"
    assert all(api_satisfies(f">=1.{minor},<2") for minor in range(4))
    assert not api_satisfies(">=1.4,<2")

    class OldStyle(Augmentation):  # written for 1.0: no device_transform of its own
        name = "old_style"

        def sample_transform(self, ctx):
            return v2.RandomHorizontalFlip()

    assert OldStyle().device_transform(CTX) is None
    with pytest.raises(VitcoreError, match=r"augmentations\[0\] \(old_style\) has no device version"):
        device_steps([OldStyle()], CTX)


# --------------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_every_image_gets_its_own_crop_without_host_syncs():
    device = torch.device("cuda")
    pre = Preprocessing(32)
    steps = device_steps([RandomResizedCrop(), HorizontalFlip()], AugmentationContext(pre, 3))
    pipeline = DeviceAugment(steps, pre, DeviceNormalize(pre, device), device)
    images = noise(64, 40).to(device)
    pipeline(images)  # warm-up: lazy initialisation may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = pipeline(images)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.device.type == "cuda" and out.shape == (64, 3, 32, 32)
    assert len({out[i].cpu().numpy().tobytes() for i in range(64)}) == 64
    # Deterministic mode: the same kernel (torchvision would swap in its compiled Python version).
    params = sample_crop_params(64, 40, 40, (0.08, 1.0), (3 / 4, 4 / 3), device)
    fast = crop_resize(images.float(), params, 32)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        steady = crop_resize(images.float(), params, 32)
    finally:
        torch.use_deterministic_algorithms(False)
    torch.testing.assert_close(steady, fast)
    torch.testing.assert_close(fast.cpu(), crop_resize(images.float().cpu(), params.cpu(), 32), atol=1e-2, rtol=0)
