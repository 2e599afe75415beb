"""`vitcore evaluate RUN --data ROOT [--split S]` on a train/val/test root evaluates the chosen split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vitcore.testing import make_image_folder, run_cli, tiny_spec, train_spec


@pytest.fixture(scope="module")
def split_root_run(tmp_path_factory) -> tuple[Path, Path]:
    """A run trained on ROOT/train + ROOT/val, with ROOT/test held out: 6, 3 and 4 images per class."""
    root = tmp_path_factory.mktemp("evaluate")
    data = root / "data"
    make_image_folder(data / "train", per_class=6, seed=1)
    make_image_folder(data / "val", per_class=3, seed=2)
    make_image_folder(data / "test", per_class=4, seed=3)
    spec = tiny_spec(root, epochs=1)
    spec["data"] = {"type": "imagefolder", "root": str(data)}
    spec["sinks"], spec["visualizers"], spec["exporters"] = [], [], []
    return train_spec(spec).run_dir, data


def _evaluate(run_dir: Path, data: Path, *extra: str) -> dict:
    result = run_cli("evaluate", str(run_dir), "--data", str(data), "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_test_split_is_the_default_and_each_split_can_be_chosen(split_root_run):
    run_dir, data = split_root_run
    default = _evaluate(run_dir, data)
    assert (default["split"], default["folder"], default["images"]) == ("test", str(data / "test"), 12)
    assert sum(map(sum, default["confusion"])) == 12
    assert [(s, _evaluate(run_dir, data, "--split", s)["images"]) for s in ("val", "train")] == [("val", 9),
                                                                                               ("train", 18)]
    table = run_cli("evaluate", str(run_dir), "--data", str(data))
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0] == f"data_test: 12 images from {data / 'test'}, split test"


def test_without_a_test_folder_val_is_evaluated(split_root_run, tmp_path):
    run_dir, data = split_root_run
    two = tmp_path / "two"
    shutil.copytree(data / "train", two / "train")
    shutil.copytree(data / "val", two / "validation")  # imagefolder's other name for val
    result = _evaluate(run_dir, two)
    assert (result["split"], result["folder"], result["images"]) == ("val", str(two / "validation"), 9)
    missing = run_cli("evaluate", str(run_dir), "--data", str(two), "--split", "test")
    assert missing.returncode == 1
    assert f"--split test: {two} has no test/ folder (it has train/, validation/); choose one of those" in missing.stderr


def test_a_plain_class_folder_is_evaluated_as_it_is_and_refuses_a_split(split_root_run):
    run_dir, data = split_root_run
    plain = data / "val"
    whole = _evaluate(run_dir, plain)
    assert whole.get("split") is None and (whole["folder"], whole["images"]) == (str(plain), 9)
    refused = run_cli("evaluate", str(run_dir), "--data", str(plain), "--split", "test")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"--split test: {plain} has no train/val/test folders" in refused.stderr
