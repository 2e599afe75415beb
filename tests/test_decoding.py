"""The three input pipelines of build_loaders (loader, cache, device) on real JPEG/PNG files.

Everything decodes for real, on the CPU (device mode with device=cpu runs the same batched
``decode_jpeg`` call that uses nvJPEG on CUDA); one test repeats device mode on CUDA when a GPU
is present.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from vitcore.builtin.datasets import ImageSamples, load_image_folder
from vitcore.builtin.transforms import HorizontalFlip, RandomResizedCrop
from vitcore.components import AugmentationContext, Preprocessing
from vitcore.engine import decoded_cache
from vitcore.engine.data import build_loaders
from vitcore.engine.decoded_cache import cache_key, cache_side, clean_stale_temps, open_or_build
from vitcore.engine.device_decode import EncodedFiles, exif_orientation, orient
from vitcore.engine.distributed import DistInfo
from vitcore.engine.transforms import eval_transform, train_transform
from vitcore.errors import VitcoreError
from vitcore.images import load_rgb

# torchvision 0.29 marks its decoders deprecated (TorchCodec); they are what this feature uses.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

PRE = Preprocessing(32, crop_pct=0.875)  # cached square: round(32 / 0.875) = 37
CPU = torch.device("cpu")


def _picture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Gradients plus noise: smooth enough to be photo-like, busy enough to catch a 1-pixel shift."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 4 % 256], -1)
    return np.clip(base + rng.integers(-25, 25, base.shape), 0, 255).astype(np.uint8)


def _with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = image.getexif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two classes of JPEGs (landscape, portrait, odd sizes, one grey, one EXIF-rotated, one
    named .png) and PNGs (RGB, RGBA, palette with transparency)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(20):
        folder = root / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        height, width = int(rng.integers(40, 72)), int(rng.integers(40, 72))
        Image.fromarray(_picture(rng, height, width)).save(folder / f"{i:02d}.jpg", quality=90)
    Image.fromarray(_picture(rng, 50, 61)[..., 0]).save(root / "c0" / "grey.jpg", quality=90)
    (root / "c1" / "rotated.jpg").write_bytes(_with_orientation(Image.fromarray(_picture(rng, 45, 66)), 6))
    Image.fromarray(_picture(rng, 47, 58)).save(root / "c0" / "really_a_jpeg.png", format="JPEG", quality=90)
    Image.fromarray(_picture(rng, 44, 53)).save(root / "c0" / "plain.png")
    rgba = np.concatenate([_picture(rng, 52, 41), rng.integers(0, 256, (52, 41, 1), dtype=np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(root / "c1" / "alpha.png")
    palette = Image.fromarray(_picture(rng, 43, 49)).convert("P", palette=Image.ADAPTIVE, colors=16)
    palette.save(root / "c1" / "palette.png", transparency=3)
    return root


def _splits(folder: Path):
    return load_image_folder(folder, val_fraction=0.4, split_seed=0, check_images=False)


def _build(splits, decode: str, tmp_path: Path, train_tf=None, workers: int = 0, batch: int = 4,
           device: torch.device = CPU):
    ev = eval_transform(PRE)
    return build_loaders(splits.train, splits.val, train_tf or ev, ev, batch, DistInfo(), device, 0,
                         workers, decode=decode, cache_root=tmp_path / "cache", preprocessing=PRE)


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*loader)
    return torch.cat([i.cpu() for i in images]), torch.cat(labels)


def _augmented() -> object:
    ctx = AugmentationContext(PRE, num_classes=2)
    return train_transform([RandomResizedCrop(), HorizontalFlip()], ctx)


class Counting(ImageSamples):
    """ImageSamples that counts decodes (the cache is keyed by the same samples)."""

    def __init__(self, base: ImageSamples) -> None:
        super().__init__(base.samples, base.classes)
        self.decoded = 0

    def __getitem__(self, index: int):
        self.decoded += 1
        return super().__getitem__(index)


class NotFiles:
    """A dataset without files: items made in memory."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int):
        return Image.new("RGB", (40 + index, 50), (index * 30, 10, 200)), index % 2


# --------------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------------


def _cache_files(tmp_path: Path) -> list[Path]:
    """The cache's files, without the (released) lock files builds take turns on."""
    return sorted(p for p in (tmp_path / "cache" / "decoded").iterdir() if p.suffix != ".lock")


def test_cache_is_built_once_then_reused_without_decoding(folder, tmp_path):
    train = Counting(_splits(folder).train)
    first = open_or_build(train, PRE, tmp_path / "cache", workers=0, show_progress=False)
    assert train.decoded == len(train)
    files = _cache_files(tmp_path)
    assert [p.suffix for p in files] == [".json", ".npy", ".u8"]  # no temporaries left
    data = next(p for p in files if p.suffix == ".u8")
    stat = data.stat()
    assert stat.st_size == len(train) * 37 * 37 * 3

    second = open_or_build(train, PRE, tmp_path / "cache", workers=0, show_progress=False)
    assert train.decoded == len(train)  # not one image decoded again
    assert (data.stat().st_ino, data.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert _cache_files(tmp_path) == files
    image, label = second[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 37, 37) and label == train.samples[3][1]
    assert torch.equal(image, first[3][0]) and second.targets == train.targets
    # Workers get the path, not a pickled copy of the array.
    assert len(pickle.dumps(second)) < 4096


def test_cache_built_by_worker_processes_is_the_same(folder, tmp_path):
    train = _splits(folder).train
    alone = open_or_build(train, PRE, tmp_path / "a", workers=0, show_progress=False)
    pooled = open_or_build(train, PRE, tmp_path / "b", workers=2, show_progress=False)
    assert alone.data_path.read_bytes() == pooled.data_path.read_bytes()
    assert alone.targets == pooled.targets == train.targets


def test_build_loaders_reuses_the_cache(folder, tmp_path):
    splits = _splits(folder)
    _build(splits, "cache", tmp_path)
    files = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _cache_files(tmp_path)}
    assert len(files) == 6  # train and val: data, labels, sidecar each
    _build(splits, "cache", tmp_path)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _cache_files(tmp_path)} == files


def test_changing_an_image_changes_the_key(folder, tmp_path):
    train = _splits(folder).train
    side = cache_side(PRE)
    before = cache_key(train, side, PRE.image_size, PRE.interpolation)
    assert cache_key(train, side, PRE.image_size, PRE.interpolation) == before
    path = Path(train.samples[0][0])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched
    touched = cache_key(train, side, PRE.image_size, PRE.interpolation)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path, format="JPEG")  # rewritten
    rewritten = cache_key(train, side, PRE.image_size, PRE.interpolation)
    assert len({before, touched, rewritten}) == 3
    assert cache_key(train, side + 1, PRE.image_size, PRE.interpolation) != rewritten

    counting = Counting(train)
    open_or_build(counting, PRE, tmp_path / "cache", workers=0, show_progress=False)
    Image.fromarray(np.full((40, 40, 3), 255, np.uint8)).save(path, format="JPEG")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    rebuilt = open_or_build(counting, PRE, tmp_path / "cache", workers=0, show_progress=False)
    assert counting.decoded == 2 * len(train)
    assert int(rebuilt[0][0].min()) >= 250  # the new, white picture
    assert len([p for p in _cache_files(tmp_path) if p.suffix == ".json"]) == 2


def test_cache_key_without_samples_uses_repr_and_content(tmp_path):
    side = cache_side(PRE)
    key = cache_key(NotFiles(), side, PRE.image_size, PRE.interpolation)
    assert key == cache_key(NotFiles(), side, PRE.image_size, PRE.interpolation)  # no memory address

    class Other(NotFiles):
        def __getitem__(self, index: int):
            return Image.new("RGB", (40, 50), (0, 0, 0)), 0

    assert cache_key(Other(), side, PRE.image_size, PRE.interpolation) != key
    cached = open_or_build(NotFiles(), PRE, tmp_path / "cache", workers=0, show_progress=False)
    assert len(cached) == 6 and cached[5][1] == 1


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_build_is_never_trusted_and_its_temporaries_are_removed(folder, tmp_path):
    train = Counting(_splits(folder).train)
    key = cache_key(train, cache_side(PRE), PRE.image_size, PRE.interpolation)
    store = tmp_path / "cache" / "decoded"
    store.mkdir(parents=True)
    host = decoded_cache._host()
    dead = store / f".{key}.{host}.{_dead_pid()}.abcd.u8.tmp"  # a build killed mid-write
    dead.write_bytes(b"\x07" * 1000)
    stale = store / f".{key}.elsewhere.1.ef01.u8.tmp"  # another machine's, two days old
    stale.write_bytes(b"\x07")
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    live = store / f".{key}.elsewhere.2.ef02.u8.tmp"  # another machine's, maybe still writing
    live.write_bytes(b"\x07")
    # Killed after the data file was renamed into place but before the sidecar: garbage.
    (store / f"{key}.u8").write_bytes(b"\x07" * (len(train) * 37 * 37 * 3))

    cached = open_or_build(train, PRE, tmp_path / "cache", workers=0, show_progress=False)
    assert train.decoded == len(train)  # rebuilt: no sidecar, no trust
    assert not dead.exists() and not stale.exists() and live.exists()
    image, _ = cached[0]
    assert torch.equal(eval_transform(PRE)(image), eval_transform(PRE)(load_rgb(train.samples[0][0])))

    # A sidecar whose data file is short (truncated copy) is not trusted either.
    data = store / f"{key}.u8"
    data.write_bytes(data.read_bytes()[:-1])
    open_or_build(train, PRE, tmp_path / "cache", workers=0, show_progress=False)
    assert train.decoded == 2 * len(train)
    assert clean_stale_temps(store, key) == []


def test_cache_eval_batches_equal_loader_mode(folder, tmp_path):
    splits = _splits(folder)
    loader_images, loader_labels = _all(_build(splits, "loader", tmp_path).val)
    cache_images, cache_labels = _all(_build(splits, "cache", tmp_path).val)
    assert torch.equal(cache_labels, loader_labels)
    # Same resize on the same tensor, and the square placed so the centre crops coincide: the
    # pixels are identical, not merely close (measured: max abs diff 0 on odd and even margins).
    assert torch.equal(cache_images, loader_images)


def test_cache_train_loader_yields_uint8_batches_in_loader_order(folder, tmp_path):
    splits = _splits(folder)
    loaders = _build(splits, "cache", tmp_path, train_tf=_augmented(), workers=1)
    images, labels = _all(loaders.train)
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
    _, loader_labels = _all(_build(splits, "loader", tmp_path, train_tf=_augmented()).train)
    assert torch.equal(labels, loader_labels)


def test_cache_needs_its_folder(folder, tmp_path):
    splits = _splits(folder)
    ev = eval_transform(PRE)
    with pytest.raises(VitcoreError, match="train.decode: 'cache' needs a cache folder"):
        build_loaders(splits.train, splits.val, ev, ev, 4, DistInfo(), CPU, 0, 0, decode="cache",
                      preprocessing=PRE)
    with pytest.raises(VitcoreError, match="train.decode: unknown mode 'gpu'"):
        build_loaders(splits.train, splits.val, ev, ev, 4, DistInfo(), CPU, 0, 0, decode="gpu")


def test_cache_build_checks_free_space(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(decoded_cache.shutil, "disk_usage", lambda path: type("U", (), {"free": 10})())
    with pytest.raises(VitcoreError, match="needs .* GB .* free; free space"):
        open_or_build(_splits(folder).train, PRE, tmp_path / "cache", workers=0, show_progress=False)


# --------------------------------------------------------------------------------------------
# device
# --------------------------------------------------------------------------------------------


def test_orientation_matches_pil_exif_transpose():
    pixels = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for value in range(1, 9):
        data = _with_orientation(Image.fromarray(pixels), value)
        assert exif_orientation(data) == value
        with Image.open(io.BytesIO(data)) as image:
            expected_shape = np.asarray(ImageOps.exif_transpose(image)).shape
        image = Image.fromarray(pixels)
        image.getexif()[0x0112] = value
        expected = np.asarray(ImageOps.exif_transpose(image))
        got = orient(torch.from_numpy(pixels).permute(2, 0, 1), value).permute(1, 2, 0).numpy()
        assert got.shape == expected.shape == expected_shape and (got == expected).all(), value


def test_jpeg_is_recognised_by_its_bytes_not_its_name(folder):
    files = EncodedFiles([(str(folder / "c0" / "really_a_jpeg.png"), 0), (str(folder / "c0" / "plain.png"), 0)])
    jpeg, png = files[0][0], files[1][0]
    assert jpeg.dim() == 1 and bytes(jpeg[:3].tolist()) == b"\xff\xd8\xff"  # left for the device
    assert png.dim() == 3 and png.dtype == torch.uint8  # decoded in the worker


def test_device_mode_batches_and_order_match_loader_mode(folder, tmp_path):
    splits = _splits(folder)
    loaders = _build(splits, "device", tmp_path, train_tf=_augmented(), workers=1)
    assert len(loaders.train) == len(_build(splits, "loader", tmp_path).train)
    assert loaders.train.batch_sampler is loaders.train_sampler and loaders.val.sampler is not None
    for epoch in (0, 1):
        loaders.train_sampler.set_epoch(epoch)
        batches = list(loaders.train)
        assert all(b.dtype == torch.uint8 and b.device == CPU and b.shape[1:] == (3, 32, 32) for b, _ in batches)
        reference = _build(splits, "loader", tmp_path, train_tf=_augmented())
        reference.train_sampler.set_epoch(epoch)
        assert [y.tolist() for _, y in batches] == [y.tolist() for _, y in reference.train]


def test_device_eval_batches_match_loader_mode(folder, tmp_path):
    splits = _splits(folder)
    paths = [p for p, _ in splits.val.samples]
    assert any(p.endswith(".png") for p in paths) and any(p.endswith(".jpg") for p in paths)
    loader_images, loader_labels = _all(_build(splits, "loader", tmp_path).val)
    device_images, device_labels = _all(_build(splits, "device", tmp_path).val)
    assert torch.equal(device_labels, loader_labels) and device_images.shape == loader_images.shape
    diff = (device_images.int() - loader_images.int()).abs()
    # torchvision's and Pillow's libjpeg-turbo decode identically here (measured: max diff 0);
    # the bound leaves room for another libjpeg-turbo build, not for a crop or colour error.
    assert diff.float().mean() < 0.5 and diff.max() <= 2


def test_every_file_of_the_folder_decodes_like_load_rgb(folder, tmp_path):
    """PNGs (plain, alpha, palette transparency), grey and EXIF-rotated JPEGs: full images."""
    from vitcore.engine.device_decode import collate_encoded, decode_batch

    samples = [(str(p), 0) for p in sorted(folder.rglob("*.*"))]
    batch, _ = collate_encoded([EncodedFiles(samples)[i] for i in range(len(samples))])
    for (path, _), image in zip(samples, decode_batch(batch, CPU)):
        expected = torch.from_numpy(np.array(load_rgb(path))).permute(2, 0, 1)
        assert image.shape == expected.shape, path
        assert (image.int() - expected.int()).abs().max() <= 1, path


def test_device_decode_falls_back_when_the_decoder_refuses(folder, tmp_path, monkeypatch):
    """A JPEG the device decoder refuses (e.g. CMYK on nvJPEG) is decoded with PIL instead."""
    import torchvision.io

    from vitcore.engine.device_decode import collate_encoded, decode_batch

    real = torchvision.io.decode_jpeg
    refused = str(folder / "c1" / "rotated.jpg")
    refused_bytes = Path(refused).read_bytes()

    def picky(data, *args, **kwargs):
        items = data if isinstance(data, list) else [data]
        if any(bytes(d.numpy()) == refused_bytes for d in items):
            raise RuntimeError("unsupported JPEG")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(torchvision.io, "decode_jpeg", picky)
    samples = [(str(folder / "c0" / "00.jpg"), 0), (refused, 1)]
    batch, _ = collate_encoded([EncodedFiles(samples)[i] for i in range(2)])
    decoded, refused_image = decode_batch(batch, CPU)
    for path, image in ((samples[0][0], decoded), (refused, refused_image)):
        expected = torch.from_numpy(np.array(load_rgb(path))).permute(2, 0, 1)
        assert image.shape == expected.shape and (image.int() - expected.int()).abs().max() <= 2
    assert torch.equal(refused_image, torch.from_numpy(np.array(load_rgb(refused))).permute(2, 0, 1))


def test_device_mode_needs_files(tmp_path):
    ev = eval_transform(PRE)
    with pytest.raises(VitcoreError) as error:
        build_loaders(NotFiles(), NotFiles(), ev, ev, 2, DistInfo(), CPU, 0, 0, decode="device")
    assert str(error.value) == (
        "train.decode: 'device' needs a file-backed dataset (imagefolder, csv, shapes); use 'cache' or 'loader'"
    )


def test_device_mode_feeds_evaluate(folder, tmp_path):
    from vitcore.engine.data import DeviceNormalize
    from vitcore.engine.device import resolve_precision
    from vitcore.engine.evaluate import evaluate

    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
    splits = _splits(folder)
    results = [evaluate(model, _build(splits, mode, tmp_path).val, DeviceNormalize(PRE, CPU),
                        resolve_precision("fp32", CPU), 2) for mode in ("loader", "device")]
    assert results[0].count == results[1].count == len(splits.val)
    assert abs(results[0].loss - results[1].loss) < 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (nvJPEG)")
def test_device_mode_on_cuda_matches_cpu_decoding(folder, tmp_path):
    splits = _splits(folder)
    cuda = torch.device("cuda")
    gpu = list(_build(splits, "device", tmp_path, device=cuda).val)
    assert all(images.device.type == "cuda" and images.dtype == torch.uint8 for images, _ in gpu)
    gpu_images = torch.cat([images.cpu() for images, _ in gpu])
    cpu_images, cpu_labels = _all(_build(splits, "device", tmp_path).val)
    assert torch.equal(torch.cat([labels for _, labels in gpu]), cpu_labels)
    diff = (gpu_images.int() - cpu_images.int()).abs().float()
    # nvJPEG's IDCT/upsampling and the CUDA resize differ from libjpeg-turbo and the CPU resize.
    assert diff.mean() < 2.0, float(diff.mean())
    train = _build(splits, "device", tmp_path, train_tf=_augmented(), device=cuda).train
    images, _ = next(iter(train))
    assert images.device.type == "cuda" and images.shape[1:] == (3, 32, 32)


@pytest.mark.parametrize("decode", ["cache", "device"])
def test_a_run_learns_with_each_decode_mode(tmp_path, decode):
    from vitcore.engine.trainer import train
    from vitcore.spec import load_dict
    from vitcore.testing import tiny_spec

    spec = tiny_spec(tmp_path, epochs=3, decode=decode)
    spec["augmentations"] = [{"type": "random_resized_crop", "scale": [0.6, 1.0]}, {"type": "horizontal_flip"}]
    result = train(load_dict(spec))
    summary = __import__("json").loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["best_value"] >= 0.9
    if decode == "cache":
        assert list((tmp_path / "cache" / "decoded").glob("*.u8")), "the cache lives under VITCORE_CACHE"
