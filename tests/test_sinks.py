"""The built-in metric sinks, with the files they write read back by independent readers."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import warnings

import pytest

from vitcore.builtin import sinks
from vitcore.builtin.sinks import ConsoleSink, CsvSink, JsonlSink, TensorBoardSink, tensorboard_tag
from vitcore.components import SinkContext
from vitcore.metrics_file import read_records

TRAIN_KEYS = ["epoch", "step", "loss", "acc", "lr", "images_per_sec", "time"]


def train_record(step: int) -> dict:
    return {"event": "train", "epoch": 1 + (step - 1) // 4, "step": step, "loss": 1.0 / step, "acc": 0.1 * step,
            "lr": 0.001 * step, "images_per_sec": 100.0 + step, "time": 1_700_000_000.0 + step}


def epoch_record(epoch: int, best: bool = True) -> dict:
    return {"event": "epoch", "epoch": epoch, "step": 4 * epoch, "train_loss": 0.5 / epoch, "train_acc": 0.6,
            "val_loss": 0.7 / epoch, "val_acc1": 0.25 * epoch, "val_acc5": 1.0, "lr": 0.004, "epoch_time": 2.5,
            "images_per_sec": 90.0, "val_per_class_acc": [0.5, 0.7], "confusion": [[3, 1], [0, 4]],
            "best": best, "time": 1_700_000_100.0 + epoch}


def records(last_step: int, first_step: int = 1) -> list[dict]:
    """Train records every step and an epoch record every fourth step, as the trainer logs them."""
    out = []
    for step in range(first_step, last_step + 1):
        out.append(train_record(step))
        if step % 4 == 0:
            out.append(epoch_record(step // 4))
    return out


def run_sink(sink, ctx: SinkContext, logged: list[dict]) -> None:
    sink.open(ctx)
    for record in logged:
        sink.log(record)
    sink.close()


def test_registration_and_import_stays_light():
    names = []
    sinks.register_metric_sinks(lambda component: names.append(component.name))
    assert names == ["jsonl", "csv", "tensorboard", "console"]
    code = ("import sys, vitcore.builtin.sinks, vitcore.builtin.plots, vitcore.builtin.exporters; "
            "heavy = {'torch', 'matplotlib', 'tensorboard', 'safetensors', 'numpy'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_jsonl_is_readable_live_and_resume_keeps_steps_up_to_the_checkpoint(tmp_path):
    sink = JsonlSink()
    sink.open(SinkContext(run_dir=tmp_path, spec={}))
    for record in records(8):
        sink.log(record)
        assert read_records(tmp_path)[-1] == record, "each record is on disk as soon as it is logged"
    sink.close()
    with open(tmp_path / "metrics.jsonl", "a") as handle:  # a kill mid-write leaves a torn line
        handle.write('{"event": "train", "st')
    assert len(read_records(tmp_path)) == 10

    run_sink(JsonlSink(), SinkContext(run_dir=tmp_path, spec={}, resumed=True, start_step=4), records(6, 5))
    logged = read_records(tmp_path)
    assert [(r["event"], r["step"]) for r in logged] == [("train", s) for s in range(1, 5)] + [
        ("epoch", 4), ("train", 5), ("train", 6)]
    assert logged[4] == epoch_record(1), "lists and flags survive the rewrite"
    assert all(json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines())
    assert not list(tmp_path.glob(".*")), "no temporary files left behind"
    assert read_records(tmp_path / "missing") == []


def test_csv_scalar_columns_fixed_by_the_first_record_and_resume(tmp_path):
    no_acc = {k: v for k, v in train_record(3).items() if k != "acc"}
    run_sink(CsvSink(), SinkContext(run_dir=tmp_path, spec={}),
             [train_record(1), {**train_record(2), "extra": 7.0}, no_acc, *records(8, 4)])
    with open(tmp_path / "metrics_train.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == TRAIN_KEYS, "header from the first record; later unknown keys ignored"
    assert [float(r["loss"]) for r in rows[:3]] == [1.0, 0.5, 1.0 / 3]
    assert rows[2]["acc"] == ""
    with open(tmp_path / "metrics_epoch.csv", newline="") as handle:
        epochs = list(csv.DictReader(handle))
    assert [float(r["val_acc1"]) for r in epochs] == [0.25, 0.5]
    assert not {"event", "confusion", "val_per_class_acc", "best"} & set(epochs[0])

    with open(tmp_path / "metrics_train.csv", "a") as handle:  # a kill mid-write leaves a torn row
        handle.write("9,1")
    run_sink(CsvSink(), SinkContext(run_dir=tmp_path, spec={}, resumed=True, start_step=5), records(6, 6))
    with open(tmp_path / "metrics_train.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6] and list(rows[0]) == TRAIN_KEYS
    with open(tmp_path / "metrics_epoch.csv", newline="") as handle:
        assert [r["epoch"] for r in csv.DictReader(handle)] == ["1"]
    assert not list(tmp_path.glob(".*")), "no temporary files left behind"


def test_tensorboard_tags_follow_one_rule():
    assert tensorboard_tag("train", "loss") == "train/loss"
    assert tensorboard_tag("train", "images_per_sec") == "train/images_per_sec"
    assert tensorboard_tag("epoch", "val_acc5") == "val/acc5"
    assert tensorboard_tag("epoch", "train_loss") == "epoch/train_loss"
    assert tensorboard_tag("epoch", "step") is None and tensorboard_tag("other", "loss") is None


def test_tensorboard_scalars_image_and_resume_read_back(tmp_path):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    picture = tmp_path / "picture.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(picture)
    sink = TensorBoardSink(TensorBoardSink.Options(log_graph=False))
    sink.open(SinkContext(run_dir=tmp_path, spec={}))
    for record in records(8):
        sink.log(record)
    sink.log_image("viz/picture", picture, 4)
    sink.close()
    # TensorBoard replays event files in name order, and names start with the creation second and
    # end with a process-wide counter (…9 sorts after …10): a real resume is a later process and
    # second, so let the clock tick as it would.
    time.sleep(1.1)
    run_sink(TensorBoardSink(), SinkContext(run_dir=tmp_path, spec={}, resumed=True, start_step=4),
             records(6, 5))

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "images": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss", "train/acc", "train/lr", "train/images_per_sec", "val/loss", "val/acc1", "val/acc5",
            "epoch/train_loss", "epoch/train_acc", "epoch/lr", "epoch/epoch_time"} <= set(tags["scalars"])
    assert not any("confusion" in tag or "best" in tag or tag.endswith("/time") for tag in tags["scalars"])
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3, 4, 5, 6], "steps after the checkpoint were purged"
    assert [e.value for e in loss] == pytest.approx([1.0 / s for s in range(1, 7)])
    assert loss[0].wall_time == pytest.approx(1_700_000_001.0)
    assert [(e.step, e.value) for e in events.Scalars("val/acc1")] == [(4, 0.25)]
    assert "viz/picture" in tags["images"]
    (image,) = events.Images("viz/picture")
    assert (image.step, image.width, image.height) == (4, 40, 30)


def test_tensorboard_graph_or_a_warning(tmp_path):
    import torch
    import torchvision
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class Untraceable(torch.nn.Module):
        def forward(self, x):
            return {"not", "tensors"}

    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2,
                                                 hidden_dim=16, mlp_dim=32, num_classes=3).train()
    sink = TensorBoardSink()
    sink.open(SinkContext(run_dir=tmp_path, spec={}))
    sink.log_graph(model, torch.randn(2, 3, 32, 32))
    assert model.training, "the model's mode is restored"
    with pytest.warns(UserWarning, match="could not be traced"):
        sink.log_graph(Untraceable(), torch.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TensorBoardSink(TensorBoardSink.Options(log_graph=False)).log_graph(Untraceable(), torch.zeros(1))
    sink.close()
    assert EventAccumulator(str(tmp_path / "tb")).Reload().Tags()["graph"]


def test_console_prints_one_line_per_epoch(capsys):
    sink = ConsoleSink()
    for record in [train_record(1), epoch_record(1), {**epoch_record(2, best=False), "val_acc5": None}]:
        sink.log(record)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "epoch   1 | train loss 0.5000 acc 0.6000 | val loss 0.7000 acc1 0.2500 acc5 1.0000 | 90 img/s | 2.5s  * best",
        "epoch   2 | train loss 0.2500 acc 0.6000 | val loss 0.3500 acc1 0.5000 | 90 img/s | 2.5s",
    ]
