"""Built-in sinks, plots and exporters on their own, with real files read back."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from vitcore.builtin.exporters import SafetensorsExporter, TorchExporter, sha256
from vitcore.builtin.plots import ConfusionMatrix, Curves
from vitcore.builtin.sinks import ConsoleSink, CsvSink, JsonlSink, TensorBoardSink
from vitcore.components import (
    ExportContext,
    Preprocessing,
    SinkContext,
    VisualizerContext,
)
from vitcore.metrics_file import read_records


def _records(steps):
    out = []
    for step in steps:
        out.append({"event": "train", "epoch": 1 + step // 4, "step": step, "loss": 1.0 / step, "acc": 0.5,
                    "lr": 0.01, "images_per_sec": 100.0, "time": 0.0})
        if step % 4 == 0:
            out.append({"event": "epoch", "epoch": step // 4, "step": step, "train_loss": 1.0 / step,
                        "train_acc": 0.5, "val_loss": 0.9, "val_acc1": step / 10, "val_per_class_acc": [0.5, 0.7],
                        "confusion": [[3, 1], [0, 4]], "best": True, "lr": 0.01, "images_per_sec": 90.0})
    return out


def test_jsonl_and_csv_resume_drop_records_after_the_checkpoint(tmp_path):
    first = SinkContext(run_dir=tmp_path, spec={})
    sinks = [JsonlSink(), CsvSink()]
    for sink in sinks:
        sink.open(first)
        for record in _records(range(1, 9)):
            sink.log(record)
        sink.close()
    # A kill mid-write leaves a torn line: readers skip it.
    with open(tmp_path / "metrics.jsonl", "a") as handle:
        handle.write('{"event": "train", "st')
    assert len(read_records(tmp_path)) == 10

    resumed = SinkContext(run_dir=tmp_path, spec={}, resumed=True, start_step=4)
    for sink in sinks:
        sink.open(resumed)
        for record in _records(range(5, 7)):
            sink.log(record)
        sink.close()
    steps = [r["step"] for r in read_records(tmp_path) if r["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    with open(tmp_path / "metrics_train.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(float(r["step"])) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert set(rows[0]) == {"epoch", "step", "loss", "acc", "lr", "images_per_sec", "time"}
    with open(tmp_path / "metrics_epoch.csv", newline="") as handle:
        epochs = list(csv.DictReader(handle))
    assert [r["epoch"] for r in epochs] == ["1"] and "confusion" not in epochs[0]


def test_tensorboard_resume_purges_steps_after_the_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = TensorBoardSink()
    sink.open(SinkContext(run_dir=tmp_path, spec={}))
    for record in _records(range(1, 9)):
        sink.log(record)
    sink.close()
    sink = TensorBoardSink()
    sink.open(SinkContext(run_dir=tmp_path, spec={}, resumed=True, start_step=4))
    for record in _records(range(5, 7)):
        sink.log(record)
    sink.close()
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in events.Scalars("val/acc1")] == [4]


def test_console_prints_one_line_per_epoch(capsys):
    sink = ConsoleSink()
    for record in _records(range(1, 9)):
        sink.log(record)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch   1 | train loss 0.2500") and lines[0].endswith("* best")


def test_plots_are_real_non_blank_pictures(tmp_path):
    ctx = VisualizerContext(run_dir=tmp_path, records=_records(range(1, 13)), classes=["cat", "dog"])
    paths = Curves().render(ctx) + ConfusionMatrix().render(ctx)
    assert [p.name for p in paths] == ["curves.png", "confusion_matrix.png"]
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
        assert pixels.shape[0] > 200 and pixels.std() > 10
    assert Curves().render(VisualizerContext(run_dir=tmp_path, records=[], classes=[])) == []


def test_exports_reload_exactly(tmp_path):
    import torchvision

    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2,
                                                 hidden_dim=16, mlp_dim=32, num_classes=3).eval()
    pre = Preprocessing(image_size=32)
    ctx = ExportContext(run_dir=tmp_path, model=model, classes=["a", "b", "c"], preprocessing=pre,
                        spec={"name": "x", "model": {"type": "torchvision_vit", "depth": 1}})
    weights, info = SafetensorsExporter().export(ctx)
    (pt,) = TorchExporter().export(ctx)
    reloaded = load_file(weights)
    state = model.state_dict()
    assert set(reloaded) == set(state)
    assert all(torch.equal(reloaded[k], state[k]) for k in state)
    description = json.loads(info.read_text())
    assert description["classes"] == ["a", "b", "c"]
    assert description["preprocessing"]["image_size"] == 32
    assert description["weights"]["sha256"] == sha256(weights)
    payload = torch.load(pt, weights_only=True)
    assert payload["classes"] == ["a", "b", "c"] and payload["model"]["depth"] == 1
    assert all(torch.equal(payload["state_dict"][k], state[k]) for k in state)
    assert not list(tmp_path.glob("exports/.*")), "no temporary files left behind"
