"""The ``imagefolder`` and ``csv`` dataset providers.

Both find their files once at load time, drop undecodable ones with a single warning, and hand
the engine plain map-style datasets of ``(RGB PIL image, label)``. Heavy modules (PIL)
are imported inside functions: ``vitcore plugins list`` imports this module.
"""

from __future__ import annotations

import csv
import os
import random
import warnings
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pydantic import Field

from vitcore import hookimpl
from vitcore.images import (
    bad_images_message,
    find_bad_images,
    is_image_file,
    load_rgb,
)
from vitcore.components import DataContext, DatasetProvider, DataSplits, Options, SpecPath
from vitcore.errors import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image

Sample = tuple[str, int]

_VAL_NAMES = ("val", "validation")
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class ImageSamples:
    """A map-style dataset over ``(path, label)`` pairs, decoding each image when indexed.

    Plain Python (no torch base class) so it stays picklable and cheap; DataLoader accepts it.
    """

    def __init__(self, samples: Sequence[Sample], classes: Sequence[str]) -> None:
        self.samples: list[Sample] = list(samples)
        self.classes: list[str] = list(classes)

    @property
    def targets(self) -> list[int]:
        return [label for _path, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple["Image.Image", int]:
        path, label = self.samples[index]
        return load_rgb(path), label


def resolve(path: str | os.PathLike, base: Path) -> Path:
    """``path`` with ``~`` expanded, relative to ``base`` unless absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def stratified_split(
    samples: Sequence[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split per class so every class with >= 2 samples has at least one in each part.

    Each class is shuffled with its own seeded generator over its sorted paths, so the split
    depends neither on file system order nor on which other classes exist.
    """
    by_label: dict[int, list[Sample]] = defaultdict(list)
    for sample in sorted(samples):
        by_label[sample[1]].append(sample)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted(by_label):
        group = by_label[label]
        random.Random(f"{seed}/{label}").shuffle(group)
        n_val = min(len(group) - 1, max(1, round(len(group) * val_fraction)))
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    return sorted(train, key=_by_label), sorted(val, key=_by_label)


def _by_label(sample: Sample) -> tuple[int, str]:
    return sample[1], sample[0]


def drop_bad_images(samples: list[Sample], where: str) -> list[Sample]:
    """``samples`` without the files PIL cannot decode, warning once about the ones dropped."""
    bad = find_bad_images(path for path, _label in samples)
    if not bad:
        return samples
    warnings.warn(bad_images_message(bad, where), stacklevel=2)
    dropped = {path for path, _reason in bad}
    return [sample for sample in samples if sample[0] not in dropped]


# --------------------------------------------------------------------------------------------
# imagefolder
# --------------------------------------------------------------------------------------------

_FOLDER_LAYOUT = (
    "Expected either ROOT/<class>/<images> (split into train/val by val_fraction) or "
    "ROOT/train/<class>/<images> with ROOT/val/<class>/<images> (and optionally ROOT/test/...)."
)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(os.path.join(dirpath, name) for name in filenames if is_image_file(name))
    return sorted(found)


def _scan_classes(folder: Path) -> tuple[list[str], list[Sample]]:
    """Class names (sub-folder names) and samples of a training folder; every class needs images."""
    class_dirs = _subdirs(folder)
    if not class_dirs:
        raise VitcoreError(f"no class folders in {folder}. {_FOLDER_LAYOUT}")
    classes = [d.name for d in class_dirs]
    samples: list[Sample] = []
    for label, class_dir in enumerate(class_dirs):
        files = _images_under(class_dir)
        if not files:
            raise VitcoreError(
                f"class folder {class_dir} holds no image files (.jpg, .png, ...). "
                f"Add images or remove the folder. {_FOLDER_LAYOUT}"
            )
        samples.extend((path, label) for path in files)
    return classes, samples


def _scan_with_classes(folder: Path, classes: list[str]) -> list[Sample]:
    """Samples of a val/test folder, which must use the training folder's class names."""
    index = {name: label for label, name in enumerate(classes)}
    samples: list[Sample] = []
    for class_dir in _subdirs(folder):
        if class_dir.name not in index:
            raise VitcoreError(
                f"class folder {class_dir} has no counterpart in the training folder; known classes: "
                f"{', '.join(classes)}. Rename it to one of those or add it to the training folder."
            )
        samples.extend((path, index[class_dir.name]) for path in _images_under(class_dir))
    if not samples:
        raise VitcoreError(f"no images in {folder}. {_FOLDER_LAYOUT}")
    return samples


def load_image_folder(
    root: Path, val_fraction: float, split_seed: int, check_images: bool
) -> DataSplits:
    """Splits from a folder tree (see ``_FOLDER_LAYOUT``); shared with the ``shapes`` provider."""
    if not root.is_dir():
        raise VitcoreError(f"dataset folder {root} does not exist (or is not a folder). {_FOLDER_LAYOUT}")
    train_dir = root / "train"
    val_dir = next((root / n for n in _VAL_NAMES if (root / n).is_dir()), None)
    test_dir = root / "test" if (root / "test").is_dir() else None
    if not train_dir.is_dir() and (val_dir or test_dir):
        raise VitcoreError(f"{root} has a val/test folder but no 'train' folder. {_FOLDER_LAYOUT}")

    layout_root = train_dir if train_dir.is_dir() else root
    classes, train = _scan_classes(layout_root)
    val = _scan_with_classes(val_dir, classes) if val_dir else None
    test = _scan_with_classes(test_dir, classes) if test_dir else None
    if check_images:
        train = drop_bad_images(train, str(layout_root))
        val = drop_bad_images(val, str(val_dir)) if val is not None else None
        test = drop_bad_images(test, str(test_dir)) if test is not None else None
    if val is None:  # one folder of classes: hold out a stratified part of it
        train, val = stratified_split(train, val_fraction, split_seed)
    if not train or not val:
        raise VitcoreError(f"{root} leaves no usable images for training or validation. {_FOLDER_LAYOUT}")
    return DataSplits(
        classes=classes,
        train=ImageSamples(train, classes),
        val=ImageSamples(val, classes),
        test=ImageSamples(test, classes) if test else None,
        info={"root": str(root)},
    )


#: The folders of each split in a split root, as ``imagefolder`` reads them.
_SPLIT_FOLDERS = {"train": ("train",), "val": _VAL_NAMES, "test": ("test",)}


def split_folder(root: Path, classes: Sequence[str], split: str | None = None) -> tuple[Path, str | None]:
    """The folder ``vitcore evaluate --data ROOT [--split S]`` reads, and the split it is.

    A root holding ``train/``, ``val/`` (or ``validation/``) or ``test/`` (folders that are not
    class names) is a split root, as ``imagefolder`` reads it: ``split`` chooses one, by default
    ``test`` when there is one, else ``val``. Any other folder is one set of class folders.
    """
    if not root.is_dir():
        raise VitcoreError(f"{root} does not exist (or is not a folder). {_FOLDER_LAYOUT}")
    known = set(classes)
    present = {}
    for name, folders in _SPLIT_FOLDERS.items():
        found = next((root / f for f in folders if f not in known and (root / f).is_dir()), None)
        if found is not None:
            present[name] = found
    if not present:
        if split is not None:
            raise VitcoreError(f"--split {split}: {root} has no train/val/test folders; it is read as one folder of "
                               f"class sub-folders. Leave out --split, or give the folder that holds {split}/")
        return root, None
    if split is None:
        split = "test" if "test" in present else "val" if "val" in present else None
        if split is None:
            raise VitcoreError(f"{root} holds a train/ folder but no val/ or test/ one; evaluate the training "
                               "images with --split train, or give a folder of class sub-folders")
    if split not in present:
        raise VitcoreError(f"--split {split}: {root} has no {split}/ folder (it has "
                           f"{', '.join(p.name + '/' for p in present.values())}); choose one of those")
    return present[split], split


def labelled_folder(folder: Path, classes: list[str], check_images: bool = True) -> ImageSamples:
    """A folder of class sub-folders labelled with a known class list (``vitcore evaluate``)."""
    if not folder.is_dir():
        raise VitcoreError(f"{folder} does not exist (or is not a folder). {_FOLDER_LAYOUT}")
    samples = _scan_with_classes(folder, classes)
    if check_images:
        samples = drop_bad_images(samples, str(folder))
    return ImageSamples(samples, classes)


class SplitOptions(Options):
    val_fraction: float = Field(0.2, gt=0, lt=1, description="Held-out share when no val split is given.")
    split_seed: int = Field(0, description="Seed of the stratified train/val split.")
    check_images: bool = Field(True, description="Verify every file at load time and skip bad ones.")


class ImageFolderDataset(DatasetProvider):
    """Images in class folders: ROOT/<class>/* or ROOT/{train,val[,test]}/<class>/*."""

    name = "imagefolder"

    class Options(SplitOptions):
        root: SpecPath = Field(description="Dataset folder; a relative path is relative to the spec file's folder.")

    def load(self, ctx: DataContext) -> DataSplits:
        o = self.options
        root = resolve(o.root, ctx.spec_dir)
        return load_image_folder(root, o.val_fraction, o.split_seed, o.check_images)


# --------------------------------------------------------------------------------------------
# csv
# --------------------------------------------------------------------------------------------


def _class_order(labels: set[str]) -> list[str]:
    """Sorted labels; integer labels sort numerically so "10" follows "9" and index i is label i."""
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _read_manifest(path: Path) -> tuple[list[str], list[int], dict[str, list[str]]]:
    """A CSV file's header, the line number of each data row, and each column's values as text.

    Spaces after a comma are dropped and blank lines skipped; a row with more fields than the
    header is a ``csv.Error`` naming its line, a shorter one is padded with empty values.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        header = next(reader, None)
        if not header:
            raise csv.Error("no header row")
        lines: list[int] = []
        table: dict[str, list[str]] = {name: [] for name in header}
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            if len(row) > len(header):
                raise csv.Error(f"line {reader.line_num} has {len(row)} fields, the header {len(header)}")
            lines.append(reader.line_num)
            for name, value in zip(header, row + [""] * (len(header) - len(row))):
                table[name].append(value)
    return header, lines, table


def _rows_message(rows: list[tuple[int, str]], shown: int = 5) -> str:
    listed = "; ".join(f"line {line}: {text}" for line, text in rows[:shown])
    more = f"; and {len(rows) - shown} more" if len(rows) > shown else ""
    return listed + more


class CsvDataset(DatasetProvider):
    """Images listed in a CSV manifest with path and label columns (and optionally a split column)."""

    name = "csv"

    class Options(SplitOptions):
        path: SpecPath = Field(description="The CSV manifest; a relative path is relative to the spec file's folder.")
        root: SpecPath | None = Field(
            None, description="Folder image paths are relative to (default: the manifest's)."
        )
        path_column: str = Field("path", description="Column holding image paths (relative to root).")
        label_column: str = Field("label", description="Column holding class labels.")
        split_column: str | None = Field(
            None, description="Column of train/val/test; else split by val_fraction."
        )

    def load(self, ctx: DataContext) -> DataSplits:
        o = self.options
        manifest = resolve(o.path, ctx.spec_dir)
        if not manifest.is_file():
            raise VitcoreError(f"CSV manifest {manifest} does not exist")
        try:
            columns, lines, table = _read_manifest(manifest)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise VitcoreError(f"cannot read CSV manifest {manifest}: {exc}") from None
        wanted = [o.path_column, o.label_column] + ([o.split_column] if o.split_column else [])
        for column in wanted:
            if column not in columns:
                raise VitcoreError(
                    f"CSV manifest {manifest} has no column {column!r}; its columns are "
                    f"{', '.join(map(repr, columns))}. Set path_column/label_column/split_column."
                )
        if not lines:
            raise VitcoreError(f"CSV manifest {manifest} lists no images")

        base = resolve(o.root, ctx.spec_dir) if o.root is not None else manifest.parent
        paths = [str(resolve(p.strip(), base)) for p in table[o.path_column]]
        labels = [label.strip() for label in table[o.label_column]]
        blank = [
            (line, "empty path or label")
            for line, path, label in zip(lines, table[o.path_column], labels)
            if not path.strip() or not label
        ]
        if blank:
            raise VitcoreError(
                f"CSV manifest {manifest} has rows without a path or label: {_rows_message(blank)}"
            )
        missing = [(n, p) for n, p in zip(lines, paths) if not os.path.isfile(p)]
        if missing:
            raise VitcoreError(
                f"CSV manifest {manifest} lists {len(missing)} image file(s) that do not exist: "
                f"{_rows_message(missing)}. Fix the paths (relative ones resolve against {base}) "
                "or set 'root'."
            )

        classes = _class_order(set(labels))
        index = {name: label for label, name in enumerate(classes)}
        samples = [(path, index[label]) for path, label in zip(paths, labels)]
        if o.split_column:
            parts = self._named_splits(manifest, table[o.split_column], samples)
        else:
            parts = {"train": samples}
        if o.check_images:
            parts = {name: drop_bad_images(part, str(manifest)) for name, part in parts.items()}
        if "val" not in parts:
            parts["train"], parts["val"] = stratified_split(parts["train"], o.val_fraction, o.split_seed)
        if not parts.get("train") or not parts.get("val"):
            raise VitcoreError(
                f"CSV manifest {manifest} leaves no usable images for training or validation"
            )
        return DataSplits(
            classes=classes,
            train=ImageSamples(parts["train"], classes),
            val=ImageSamples(parts["val"], classes),
            test=ImageSamples(parts["test"], classes) if parts.get("test") else None,
            info={"manifest": str(manifest), "root": str(base)},
        )

    @staticmethod
    def _named_splits(
        manifest: Path, column: Sequence[str], samples: list[Sample]
    ) -> dict[str, list[Sample]]:
        parts: dict[str, list[Sample]] = defaultdict(list)
        unknown = []
        for line, value, sample in zip(range(2, len(samples) + 2), column, samples):
            split = _SPLIT_ALIASES.get(value.strip().lower())
            if split is None:
                unknown.append((line, repr(value)))
            else:
                parts[split].append(sample)
        if unknown:
            raise VitcoreError(
                f"CSV manifest {manifest}: split values must be train, val or test: "
                f"{_rows_message(unknown)}"
            )
        for required in ("train", "val"):
            if not parts[required]:
                raise VitcoreError(f"CSV manifest {manifest} has no rows with split {required!r}")
        return dict(parts)


@hookimpl
def register_datasets(register) -> None:
    register(ImageFolderDataset)
    register(CsvDataset)
