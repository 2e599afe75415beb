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


# -- what curves.png shows: read from its pixels -----------------------------------------------

#: matplotlib's cycle colours the curves use: one per series, the same in every panel.
TRAIN, VALIDATION, TOP5, LR = (31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189)


def panels(path) -> list[np.ndarray]:
    """The three panels of curves.png (loss, accuracy, learning rate) as RGB arrays."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    third = pixels.shape[1] // 3
    return [pixels[:, i * third:(i + 1) * third] for i in range(3)]


def shows(panel: np.ndarray, colour: tuple[int, int, int], at_least: int = 20) -> bool:
    return int((np.abs(panel - colour).sum(axis=-1) < 40).sum()) >= at_least


@pytest.mark.parametrize("classes, top5", [(3, False), (5, False), (6, True), (50, True)])
def test_curves_show_top5_only_beyond_five_classes_in_one_colour_per_series(tmp_path, classes, top5):
    names = [f"class_{i}" for i in range(classes)]
    ctx = VisualizerContext(run_dir=tmp_path, records=run_records(classes=classes), classes=names)
    loss, accuracy, lr = panels(Curves().render(ctx)[0])
    assert shows(loss, TRAIN) and shows(loss, VALIDATION) and not shows(loss, LR)
    assert shows(accuracy, TRAIN) and shows(accuracy, VALIDATION), "train and validation keep their colours"
    assert shows(accuracy, TOP5) is top5
    assert shows(lr, LR) and not shows(lr, TRAIN) and not shows(lr, VALIDATION)

    # Without class names (vitcore plot on an old run) the count comes from the confusion matrix.
    unnamed = VisualizerContext(run_dir=tmp_path / "unnamed", records=run_records(classes=classes), classes=[])
    assert shows(panels(Curves().render(unnamed)[0])[1], TOP5) is top5


def test_curves_give_no_legend_entry_to_a_series_without_points(tmp_path):
    """A run without validation records: no orange anywhere, the legend's swatch included."""
    records = [{k: v for k, v in r.items() if not k.startswith("val_")} for r in run_records(classes=10)]
    loss, accuracy, _ = panels(Curves().render(VisualizerContext(run_dir=tmp_path, records=records,
                                                                   classes=[]))[0])
    assert shows(loss, TRAIN) and shows(accuracy, TRAIN)
    assert not shows(loss, VALIDATION, at_least=1) and not shows(accuracy, VALIDATION, at_least=1)
    assert not shows(accuracy, TOP5, at_least=1)
