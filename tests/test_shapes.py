"""The shapes data set: generated once into a real image folder, with boxes, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from vitcore.builtin.shapes import SHAPES, ShapesDataset, ensure_generated
from vitcore.components import DataContext
from vitcore.errors import VitcoreError

SMALL = {"train_per_class": 5, "val_per_class": 2, "image_size": 32}


def provider(**options) -> ShapesDataset:
    return ShapesDataset(ShapesDataset.Options(**{**SMALL, **options}))


def context(tmp_path: Path) -> DataContext:
    return DataContext(cache_dir=tmp_path / "cache", spec_dir=tmp_path)


def test_generates_image_folder_with_boxes(tmp_path):
    shapes = provider(classes=list(SHAPES))
    splits = shapes.load(context(tmp_path))
    root = Path(splits.info["root"])
    assert root.parent == tmp_path / "cache" / "datasets" and root.name.startswith("shapes-")
    assert splits.info["boxes_file"] == str(root / "boxes.json")
    assert splits.classes == sorted(SHAPES)
    assert (len(splits.train), len(splits.val), splits.test) == (5 * len(SHAPES), 2 * len(SHAPES), None)
    assert len(list((root / "train" / "star").glob("*.png"))) == 5
    assert not [p for p in root.parent.iterdir() if ".partial-" in p.name]  # no partial folder left

    boxes = json.loads((root / "boxes.json").read_text())
    assert boxes["image_size"] == 32 and len(boxes["boxes"]) == 7 * len(SHAPES)
    amplitude = 0.1 * 255
    for relative, (x0, y0, x1, y1) in boxes["boxes"].items():
        assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32
        assert x1 - x0 >= 0.3 * 32 * 0.5  # not tiny: at least half the smallest diameter
        pixels = np.asarray(Image.open(root / relative), dtype=np.float64)
        outside = np.ones((32, 32), bool)
        outside[y0:y1, x0:x1] = False
        background = np.median(pixels[outside], axis=0)
        # Outside the box there is only noisy background; inside, the contrasting shape.
        assert np.abs(pixels[outside] - background).max() <= amplitude + 8, relative
        assert np.abs(pixels[~outside] - background).max(axis=1).max() >= 75, relative

    image, label = splits.train[0]
    assert image.mode == "RGB" and image.size == (32, 32) and splits.classes[label] == "circle"


def test_same_seed_same_bytes_and_cache_reuse(tmp_path):
    first = provider().load(context(tmp_path))
    root = Path(first.info["root"])
    files = sorted(root.rglob("*.png"))
    stamps = {p: p.stat().st_mtime_ns for p in files}

    again = provider().load(context(tmp_path))  # reuses the folder: nothing rewritten
    assert again.info["root"] == str(root)
    assert {p: p.stat().st_mtime_ns for p in sorted(root.rglob("*.png"))} == stamps
    assert again.train.samples == first.train.samples

    elsewhere = provider(root=str(tmp_path / "copy")).load(context(tmp_path))
    copy_root = Path(elsewhere.info["root"])
    assert copy_root == tmp_path / "copy"
    for path in files:
        assert (copy_root / path.relative_to(root)).read_bytes() == path.read_bytes()
    assert (copy_root / "boxes.json").read_bytes() == (root / "boxes.json").read_bytes()


def test_other_options_other_folder(tmp_path):
    ctx = context(tmp_path)
    base = provider().root(ctx)
    assert provider(seed=1).root(ctx) != base
    assert provider(noise=0.2).root(ctx) != base
    assert provider(root="mine").root(ctx) == tmp_path / "mine"
    different = provider(seed=1).load(ctx)
    assert Path(different.info["root"]) == provider(seed=1).root(ctx)
    default = provider().load(ctx)
    first_other, first_default = different.train.samples[0][0], default.train.samples[0][0]
    assert Path(first_other).read_bytes() != Path(first_default).read_bytes()


def test_existing_folder_with_other_options_is_refused(tmp_path):
    provider(root="data").load(context(tmp_path))
    with pytest.raises(VitcoreError, match="Delete the folder") as err:
        provider(root="data", seed=3).load(context(tmp_path))
    assert str(tmp_path / "data") in str(err.value)


def test_interrupted_generation_leaves_nothing_trusted(tmp_path, monkeypatch):
    import vitcore.builtin.shapes as shapes_module

    def crash(folder, options):
        (folder / "train").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(shapes_module, "generate", crash)
    options = ShapesDataset.Options(**SMALL)
    with pytest.raises(KeyboardInterrupt):
        ensure_generated(tmp_path / "shapes", options)
    assert [p.name for p in tmp_path.iterdir()] == [".shapes.lock"]  # only the (released) lock file


def test_options_are_validated():
    with pytest.raises(ValidationError, match="octagon"):
        ShapesDataset.Options(classes=["circle", "octagon"])
    with pytest.raises(ValidationError, match="at least 2"):
        ShapesDataset.Options(classes=["circle"])
    with pytest.raises(ValidationError, match="min_size_fraction"):
        ShapesDataset.Options(min_size_fraction=0.8, max_size_fraction=0.5)
