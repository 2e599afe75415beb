"""The imagefolder and csv providers, and image decoding, on real files written with PIL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vitcore.builtin.datasets import CsvDataset, ImageFolderDataset, stratified_split
from vitcore.components import DataContext
from vitcore.errors import VitcoreError
from vitcore.images import find_bad_images, load_rgb


def write_image(path: Path, colour=(200, 30, 30), size=(8, 6), fmt="PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)
    return path


def make_classes(folder: Path, counts: dict[str, int]) -> None:
    for name, count in counts.items():
        for i in range(count):
            write_image(folder / name / f"{i:03d}.png", colour=(i * 10 % 256, 0, 0))


def load_folder(tmp_path: Path, **options):
    provider = ImageFolderDataset(ImageFolderDataset.Options(**options))
    return provider.load(DataContext(cache_dir=tmp_path / "cache", spec_dir=tmp_path))


def test_train_val_folders(tmp_path):
    make_classes(tmp_path / "data" / "train", {"cat": 3, "dog": 2})
    make_classes(tmp_path / "data" / "val", {"cat": 1, "dog": 1})
    make_classes(tmp_path / "data" / "test", {"dog": 2})
    splits = load_folder(tmp_path, root="data")  # relative to the spec folder
    assert splits.classes == ["cat", "dog"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5, 2, 2)
    assert sorted(splits.train.targets) == [0, 0, 0, 1, 1]
    image, label = splits.val[1]
    assert image.mode == "RGB" and image.size == (8, 6) and label == 1
    assert splits.train.classes == ["cat", "dog"]
    assert all(Path(p).is_file() for p, _ in splits.train.samples)


def test_validation_folder_name_is_accepted(tmp_path):
    make_classes(tmp_path / "train", {"a": 2, "b": 2})
    make_classes(tmp_path / "validation", {"a": 1})
    splits = load_folder(tmp_path, root=str(tmp_path))
    assert (len(splits.train), len(splits.val), splits.test) == (4, 1, None)


def test_single_folder_stratified_split(tmp_path):
    make_classes(tmp_path, {"a": 10, "b": 3, "c": 2, "d": 1})
    splits = load_folder(tmp_path, root=str(tmp_path), val_fraction=0.3, split_seed=5)
    train = {p for p, _ in splits.train.samples}
    val = {p for p, _ in splits.val.samples}
    assert not train & val and len(train | val) == 16
    assert set(splits.val.targets) == {0, 1, 2}  # every class with >= 2 images; "d" has one
    assert sorted(splits.val.targets).count(0) == 3
    assert set(splits.train.targets) == {0, 1, 2, 3}

    again = load_folder(tmp_path, root=str(tmp_path), val_fraction=0.3, split_seed=5)
    assert again.val.samples == splits.val.samples
    others = [load_folder(tmp_path, root=str(tmp_path), val_fraction=0.3, split_seed=s) for s in (6, 7)]
    assert any(other.val.samples != splits.val.samples for other in others)


def test_stratified_split_ignores_input_order():
    samples = [(f"x{i}", i % 2) for i in range(20)]
    assert stratified_split(samples, 0.25, 1) == stratified_split(samples[::-1], 0.25, 1)


def odd_images(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    grey = Image.fromarray(np.tile(np.arange(0, 256, 32, dtype=np.uint8), (4, 1)), mode="L")
    deep = Image.fromarray(np.full((4, 8), 65535, dtype=np.uint16))
    rgba = Image.new("RGBA", (8, 4), (255, 0, 0, 0))  # fully transparent red -> white
    palette = Image.new("P", (8, 4), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.info["transparency"] = 0
    items = {
        "grey.png": grey,
        "deep.png": deep,
        "rgba.png": rgba,
        "la.png": Image.new("LA", (8, 4), (0, 255)),
        "palette.png": palette,
        "photo.jpg": Image.new("RGB", (8, 4), (10, 200, 10)),
        "cmyk.jpg": Image.new("CMYK", (8, 4), (0, 0, 0, 0)),
    }
    paths = []
    for name, image in items.items():
        image.save(folder / name)
        paths.append(folder / name)
    return paths


def test_odd_images_come_back_rgb(tmp_path):
    paths = {p.name: p for p in odd_images(tmp_path)}
    assert Image.open(paths["deep.png"]).mode.startswith("I")
    for path in paths.values():
        image = load_rgb(path)
        assert image.mode == "RGB" and image.size == (8, 4), path.name
    assert load_rgb(paths["deep.png"]).getpixel((0, 0)) == (255, 255, 255)  # scaled, and 65535 is white
    assert load_rgb(paths["rgba.png"]).getpixel((0, 0)) == (255, 255, 255)
    assert load_rgb(paths["la.png"]).getpixel((0, 0)) == (0, 0, 0)
    assert load_rgb(paths["palette.png"]).getpixel((0, 0)) == (0, 255, 0)
    assert load_rgb(paths["grey.png"]).getpixel((2, 0)) == (64, 64, 64)
    assert find_bad_images(paths.values()) == []


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((2, 2), 32896, dtype=np.uint16)).save(tmp_path / "mid.png")
    assert load_rgb(tmp_path / "mid.png").getpixel((0, 0)) == (128, 128, 128)


def write_corrupt(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    noise = folder / "noise.jpg"
    noise.write_bytes(np.random.default_rng(1).bytes(256))
    good = folder / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(good)
    truncated = folder / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-200])
    return [noise, truncated]


def test_corrupt_files_are_skipped_with_one_warning(tmp_path):
    make_classes(tmp_path / "train", {"a": 2, "b": 2})
    make_classes(tmp_path / "val", {"a": 1, "b": 1})
    bad = write_corrupt(tmp_path / "train" / "a")
    with pytest.warns(UserWarning, match="skipping 2 unreadable") as caught:
        splits = load_folder(tmp_path, root=str(tmp_path))
    assert len(caught) == 1 and all(str(p) in str(caught[0].message) for p in bad)
    assert len(splits.train) == 5  # 4 made + good.png
    assert all(splits.train[i][0].mode == "RGB" for i in range(len(splits.train)))
    for path in bad:
        with pytest.raises(VitcoreError, match="(?i)remove or replace it") as err:
            load_rgb(path)
        assert str(path) in str(err.value)


def test_truncated_jpeg_is_found(tmp_path):
    path = write_image(tmp_path / "x.jpg", size=(64, 64), fmt="JPEG")
    path.write_bytes(path.read_bytes()[:300])
    assert [p for p, _ in find_bad_images([path])] == [str(path)]


def test_folder_errors(tmp_path):
    with pytest.raises(VitcoreError, match="does not exist") as err:
        load_folder(tmp_path, root=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(err.value)

    (tmp_path / "empty").mkdir()
    with pytest.raises(VitcoreError, match="no class folders") as err:
        load_folder(tmp_path, root="empty")
    assert str(tmp_path / "empty") in str(err.value) and "ROOT/train/<class>" in str(err.value)

    (tmp_path / "hollow" / "cls").mkdir(parents=True)
    with pytest.raises(VitcoreError, match="holds no image files") as err:
        load_folder(tmp_path, root="hollow")
    assert str(tmp_path / "hollow" / "cls") in str(err.value)

    make_classes(tmp_path / "mixed" / "train", {"a": 2})
    make_classes(tmp_path / "mixed" / "val", {"a": 1, "zebra": 1})
    with pytest.raises(VitcoreError, match="zebra") as err:
        load_folder(tmp_path, root="mixed")
    assert str(tmp_path / "mixed" / "val" / "zebra") in str(err.value)


def write_manifest(tmp_path: Path, rows: list[str], header="path,label") -> Path:
    manifest = tmp_path / "meta" / "labels.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("\n".join([header, *rows]) + "\n")
    return manifest


def load_csv(tmp_path: Path, **options):
    provider = CsvDataset(CsvDataset.Options(**options))
    return provider.load(DataContext(cache_dir=tmp_path / "cache", spec_dir=tmp_path))


def test_csv_split_column_and_root(tmp_path):
    for i in range(6):
        write_image(tmp_path / "imgs" / f"{i}.png")
    rows = [f"{i}.png,{label},{split}" for i, (label, split) in enumerate(
        [("10", "train"), ("9", "train"), ("10", "train"),
         ("9", "Val"), ("10", "validation"), ("9", "test")]
    )]
    write_manifest(tmp_path, rows, header="file,y,part")
    splits = load_csv(
        tmp_path, path="meta/labels.csv", root="imgs",
        path_column="file", label_column="y", split_column="part",
    )
    assert splits.classes == ["9", "10"]  # integer labels sort numerically
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3, 2, 1)
    assert splits.val[0][0].mode == "RGB"


def test_csv_relative_to_manifest_with_stratified_split(tmp_path):
    rows = []
    for label in ("ant", "bee"):
        for i in range(5):
            write_image(tmp_path / "meta" / label / f"{i}.png")
            rows.append(f"{label}/{i}.png,{label}")
    write_manifest(tmp_path, rows)
    splits = load_csv(tmp_path, path=str(tmp_path / "meta" / "labels.csv"), val_fraction=0.4, split_seed=3)
    assert splits.classes == ["ant", "bee"]
    assert sorted(splits.val.targets) == [0, 0, 1, 1] and len(splits.train) == 6
    assert not {p for p, _ in splits.train.samples} & {p for p, _ in splits.val.samples}


def test_csv_errors(tmp_path):
    write_image(tmp_path / "meta" / "a.png")
    manifest = write_manifest(tmp_path, ["a.png,x"], header="path,klass")
    with pytest.raises(VitcoreError) as err:
        load_csv(tmp_path, path="meta/labels.csv")
    message = str(err.value)
    assert str(manifest) in message and "'label'" in message and "'klass'" in message

    write_manifest(tmp_path, ["a.png,x", "missing.png,y"])
    with pytest.raises(VitcoreError, match="line 3") as err:
        load_csv(tmp_path, path="meta/labels.csv")
    assert str(tmp_path / "meta" / "missing.png") in str(err.value)

    with pytest.raises(VitcoreError, match="does not exist"):
        load_csv(tmp_path, path="nope.csv")


def test_module_import_stays_light():
    code = (
        "import sys, vitcore.builtin.datasets, vitcore.builtin.shapes\n"
        "heavy = [m for m in ('torch', 'torchvision', 'PIL', 'pandas', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_csv_manifest_blank_lines_quotes_and_a_long_row(tmp_path):
    for name in ("a, b.png", "c.png", "d.png", "e.png"):
        write_image(tmp_path / "meta" / name)
    write_manifest(tmp_path, ['"a, b.png", x', "", "c.png,x", "d.png,y", "e.png,y"])  # a quoted comma, a blank line
    splits = load_csv(tmp_path, path="meta/labels.csv", val_fraction=0.5)
    assert splits.classes == ["x", "y"] and len(splits.train) == len(splits.val) == 2
    assert str(tmp_path / "meta" / "a, b.png") in {p for p, _ in splits.train.samples + splits.val.samples}
    write_manifest(tmp_path, ["c.png,y", "", "c.png,y,extra"])
    with pytest.raises(VitcoreError, match=r"cannot read CSV manifest .*labels\.csv: line 4 has 3 fields, the header 2"):
        load_csv(tmp_path, path="meta/labels.csv")
