"""The end-of-run test evaluation with a dataset plugin's own test split (``DataSplits.test``),
and a run whose test split cannot be read: the run still completes with its checkpoints and
exports, and says what went wrong and how to retry.

The plugin is a real dataset provider registered in this process; its images are real PNGs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vitcore
from vitcore.components import DatasetProvider, DataSplits, Options
from vitcore.testing import TINY_VIT, make_image_folder, train_spec
from vitcore.testing.host import registered_plugin

CLASSES = ["blue", "green", "red"]


class HeldOutOptions(Options):
    root: str
    #: A test file listed by the provider that is not on disk (it vanished before the run ended).
    missing: str = ""


class HeldOut(DatasetProvider):
    """train/ and val/ as folders; test/ as the provider's own split, with an optional missing file."""

    name = "held_out"
    Options = HeldOutOptions

    def load(self, ctx):
        from vitcore.builtin.datasets import ImageSamples, labelled_folder

        root = Path(self.options.root)
        test = labelled_folder(root / "test", CLASSES).samples
        if self.options.missing:
            test.append((self.options.missing, 0))
        return DataSplits(classes=CLASSES, train=labelled_folder(root / "train", CLASSES),
                          val=labelled_folder(root / "val", CLASSES), test=ImageSamples(test, CLASSES))


class Plugin:
    @vitcore.hookimpl
    def register_datasets(self, register):
        register(HeldOut)


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    make_image_folder(tmp_path / "data" / "train", per_class=6, seed=0)
    make_image_folder(tmp_path / "data" / "val", per_class=2, seed=1)
    make_image_folder(tmp_path / "data" / "test", per_class=3, seed=2)
    return tmp_path / "data"


def _spec(tmp_path: Path, data: Path, **options) -> dict:
    return {
        "name": "heldout", "output_dir": str(tmp_path / "runs"),
        "data": {"type": "held_out", "root": str(data), **options},
        "model": dict(TINY_VIT), "augmentations": [],
        "train": {"epochs": 1, "batch_size": 4, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0},
        "sinks": [], "visualizers": [], "exporters": [{"type": "safetensors"}],
    }


def test_a_providers_own_test_split_is_evaluated_at_the_end(tmp_path, data):
    with registered_plugin(Plugin(), "held-out-test"):
        result = train_spec(_spec(tmp_path, data))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    test = summary["test"]
    assert test["images"] == 9 and test["classes"] == CLASSES and test["source"] == {"kind": "split", "split": "test"}
    assert (test["checkpoint"], test["weights"]) == ("best.pt", "raw")
    assert sum(c["support"] for c in test["per_class"].values()) == 9
    assert "test_evaluation" in summary["end_of_run_s"] and "test_error" not in summary
    assert json.loads((result.run_dir / "evaluations" / "test.json").read_text())["acc1"] == test["acc1"]


def test_a_test_split_that_cannot_be_read_does_not_lose_the_run(tmp_path, data):
    gone = tmp_path / "gone.png"
    with registered_plugin(Plugin(), "held-out-test"), pytest.warns(UserWarning, match="could not be evaluated"):
        result = train_spec(_spec(tmp_path, data, missing=str(gone)))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and "test" not in summary
    assert str(gone) in summary["test_error"] and f"vitcore evaluate {result.run_dir} --split test" in summary[
        "test_error"]
    for kept in ("checkpoints/best.pt", "checkpoints/last.pt"):
        assert (result.run_dir / kept).is_file()
    assert summary["exports"] and all(Path(p).is_file() for p in summary["exports"])
    assert "test_evaluation" in summary["end_of_run_s"]
