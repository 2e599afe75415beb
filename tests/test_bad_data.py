"""Data that would train into a wrong or silent result is refused or reported, through real files."""

from __future__ import annotations

import json

import pytest

from vitcore.engine.trainer import train
from vitcore.errors import SpecError
from vitcore.spec import load_dict
from vitcore.testing import make_image_folder, tiny_spec


def test_a_class_whose_files_are_all_unreadable_is_refused_like_an_empty_one(tmp_path):
    spec = tiny_spec(tmp_path)
    data = tmp_path / "data"
    for path in (data / "blue").iterdir():
        path.write_bytes(b"\x89PNG\r\n\x1a\n broken")  # looks like a PNG, decodes as nothing
    with pytest.warns(UserWarning, match="could not be read|unreadable|cannot be decoded|skipped"):
        with pytest.raises(SpecError, match=r"data: class\(es\) blue have no usable training images"):
            train(load_dict(spec))
    assert not (tmp_path / "runs" / "tiny").exists() or not list((tmp_path / "runs" / "tiny").iterdir()), \
        "nothing is trained, no version folder is left"


def test_a_class_missing_from_validation_is_reported_in_the_console_and_summary(tmp_path):
    root = tmp_path / "split"
    make_image_folder(root / "train", per_class=4)
    make_image_folder(root / "val", classes=("red", "green"), per_class=2, seed=1)
    spec = tiny_spec(tmp_path, epochs=1)
    spec["data"] = {"type": "imagefolder", "root": str(root)}
    with pytest.warns(UserWarning, match="blue have no validation images"):
        result = train(load_dict(spec))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert any("blue" in w for w in summary["data"]["warnings"])
