"""The built-in visualizers draw real, non-blank PNGs from metric records alone."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vitcore.builtin import plots
from vitcore.builtin.plots import ConfusionMatrix, Curves, choose_epoch
from vitcore.components import VisualizerContext

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_records(epochs: int = 3, classes: int = 2) -> list[dict]:
    out = []
    for epoch in range(1, epochs + 1):
        for step in range(4 * epoch - 3, 4 * epoch + 1):
            out.append({"event": "train", "epoch": epoch, "step": step, "loss": 2.0 / step, "acc": step / 16,
                        "lr": 0.01 * min(1.0, step / 4), "images_per_sec": 100.0, "time": float(step)})
        confusion = np.eye(classes, dtype=int) * (5 + epoch) + 1
        out.append({"event": "epoch", "epoch": epoch, "step": 4 * epoch, "train_loss": 1.0 / epoch,
                    "train_acc": 0.3 * epoch, "val_loss": 1.1 / epoch, "val_acc1": 0.25 * epoch, "val_acc5": 1.0,
                    "lr": 0.01, "val_per_class_acc": [0.5] * classes, "confusion": confusion.tolist(),
                    "best": epoch == 2, "time": float(epoch)})
    return out


def assert_real_picture(path, min_side: int = 200) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert min(pixels.shape) >= min_side and pixels.std() > 10, "a sensible size and not blank"


def test_registration():
    found = []
    plots.register_visualizers(found.append)
    assert [c.name for c in found] == ["curves", "confusion_matrix"]
    assert not any(c.needs_model for c in found)


def test_curves_png(tmp_path):
    ctx = VisualizerContext(run_dir=tmp_path, records=run_records(), classes=["cat", "dog"])
    (path,) = Curves(Curves.Options(log_scale_loss=True)).render(ctx)
    assert path == tmp_path / "plots" / "curves.png"
    assert_real_picture(path)
    assert not list(path.parent.glob(".*")), "no temporary files left behind"
    epochs_only = [r for r in run_records() if r["event"] == "epoch"]  # a run that logged rarely
    assert_real_picture(Curves().render(VisualizerContext(run_dir=tmp_path, records=epochs_only, classes=[]))[0])
    assert Curves().render(VisualizerContext(run_dir=tmp_path / "empty", records=[], classes=[])) == []


def test_choose_epoch():
    records = run_records()
    assert choose_epoch(records, "best")["epoch"] == 2
    assert choose_epoch(records, "last")["epoch"] == 3
    no_best = [{**r, "best": False} for r in records]
    assert choose_epoch(no_best, "best")["epoch"] == 3
    assert choose_epoch([r for r in records if r["event"] == "train"], "best") is None


@pytest.mark.parametrize("classes, normalize", [(3, True), (3, False), (50, True)])
def test_confusion_matrix_png(tmp_path, classes, normalize):
    names = [f"class_{i}" for i in range(classes)]
    ctx = VisualizerContext(run_dir=tmp_path, records=run_records(classes=classes), classes=names)
    (path,) = ConfusionMatrix(ConfusionMatrix.Options(normalize=normalize)).render(ctx)
    assert path == tmp_path / "plots" / "confusion_matrix.png"
    assert_real_picture(path, min_side=300 if classes < 10 else 1500)


def test_confusion_matrix_needs_a_confusion(tmp_path):
    records = [{k: v for k, v in r.items() if k != "confusion"} for r in run_records()]
    assert ConfusionMatrix().render(VisualizerContext(run_dir=tmp_path, records=records, classes=[])) == []
