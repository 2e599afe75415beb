"""End-to-end training in-process: the run directory, TensorBoard events, versions, divergence."""

from __future__ import annotations

import json

import pytest
import torch

import vitcore
from vitcore import plugins
from vitcore.builtin.models import TorchvisionViT
from vitcore.components import Exporter
from vitcore.engine.trainer import train
from vitcore.errors import TrainingDiverged, VitcoreError
from vitcore.spec import load_dict
from vitcore.testing import tiny_spec


def test_a_run_writes_a_complete_versioned_run_directory(tmp_path):
    spec = tiny_spec(tmp_path, epochs=3)
    spec["sinks"] = [{"type": "tensorboard", "log_graph": True}, {"type": "csv"}]
    result = train(load_dict(spec))
    run_dir = result.run_dir
    assert run_dir == tmp_path / "runs" / "tiny" / "v1"

    for name in ("spec.json", "env.json", "metrics.jsonl", "summary.json", "metrics_epoch.csv",
                 "checkpoints/last.pt", "checkpoints/best.pt", "plots", "viz",
                 "exports/model.safetensors", "exports/model.json", "exports/model.pt",
                 "model_summary.json", "model_summary.txt"):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "plots").glob("*.png")), "curves and confusion matrix are drawn"

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["classes"] == ["blue", "green", "red"]
    architecture = json.loads((run_dir / "model_summary.json").read_text())
    assert architecture["params"] == summary["parameters"]
    assert summary["flops_per_image"] == architecture["flops_per_image"] > 0
    assert summary["best_value"] >= 0.9, "three colours are easy: the tiny ViT must learn them"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert max(r["val_acc1"] for r in epochs) == summary["best_value"]
    assert len(epochs[-1]["confusion"]) == 3 and len(epochs[-1]["val_per_class_acc"]) == 3
    steps = [r["step"] for r in records if r["event"] == "train"]
    assert steps == sorted(steps) and len(steps) == summary["steps"]

    resolved_spec = json.loads((run_dir / "spec.json").read_text())
    assert resolved_spec["train"]["epochs"] == 3 and resolved_spec["model"]["patch_size"] == 8
    env = json.loads((run_dir / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"

    # TensorBoard's own reader loads the events.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb")).Reload()
    tags = events.Tags()
    assert {"train/loss", "val/acc1", "val/loss"} <= set(tags["scalars"])
    acc = [e.value for e in events.Scalars("val/acc1")]
    assert acc == pytest.approx([r["val_acc1"] for r in epochs])
    assert tags["images"], "visualizer pictures reach TensorBoard"

    # best.pt holds the best epoch's weights, loadable without unpickling code.
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == summary["best_epoch"] and best["classes"] == summary["classes"]

    # A second run of the same name is a new version; nothing is overwritten.
    spec["train"]["epochs"] = 1
    second = train(load_dict(spec))
    assert second.run_dir == tmp_path / "runs" / "tiny" / "v2"
    assert json.loads((run_dir / "summary.json").read_text())["epochs_completed"] == 3


class _NaNAfterFirstSteps(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.inner(x)
        return out * float("nan") if self.calls > 5 else out  # from epoch 2's second step


class _ExplodingViT(TorchvisionViT):
    name = "exploding_vit"

    def build(self, ctx):
        return _NaNAfterFirstSteps(super().build(ctx))


class _ExplodingPlugin:
    @vitcore.hookimpl
    def register_models(self, register):
        register(_ExplodingViT)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    plugins.get_host().register_plugin(_ExplodingPlugin(), name="exploding")
    spec = tiny_spec(tmp_path, epochs=3)
    spec["model"]["type"] = "exploding_vit"
    with pytest.raises(TrainingDiverged, match="training loss became nan"):
        train(load_dict(spec))
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged"
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 1, "epoch 1's checkpoint is kept, nothing from the diverged epoch"
    assert all(torch.isfinite(t).all() for t in last["model"].values())


def test_gradient_accumulation_clipping_and_step_schedule_train(tmp_path):
    spec = tiny_spec(tmp_path, epochs=2, grad_accum_steps=2, clip_grad_norm=1.0, schedule="step",
                     step_epochs=1, optimizer="sgd", lr=0.05, label_smoothing=0.1)
    result = train(load_dict(spec))
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["event"] == "train"]
    # 12 training images, batch 4, accumulation 2: one optimizer step per epoch.
    assert result.summary["steps"] == 2
    assert train_records[0]["lr"] == pytest.approx(0.05) and train_records[1]["lr"] == pytest.approx(0.005)


def test_early_stopping_ends_a_run_that_stops_improving(tmp_path):
    # At lr 1e-9 the weights stay put: accuracy never beats epoch 1's.
    spec = tiny_spec(tmp_path, epochs=6, lr=1e-9, early_stopping_patience=2)
    result = train(load_dict(spec))
    assert result.summary["status"] == "early_stopped"
    assert (result.summary["best_epoch"], result.summary["epochs_completed"]) == (1, 3)


def test_bf16_autocast_channels_last_and_deterministic_mode_train_on_cpu(tmp_path):
    spec = tiny_spec(tmp_path, epochs=2, precision="bf16", channels_last=True, deterministic=True)
    result = train(load_dict(spec))
    assert result.summary["precision"] == "bf16" and result.summary["status"] == "completed"
    assert result.summary["best_value"] > 0.5
    assert result.summary["wall_time_s"] > 0


class _BrokenExporter(Exporter):
    name = "broken_export"

    def export(self, ctx):
        raise VitcoreError("cannot export this model")


class _BrokenExportPlugin:
    @vitcore.hookimpl
    def register_exporters(self, register):
        register(_BrokenExporter)


def test_a_failing_export_fails_the_run_and_says_why(tmp_path):
    plugins.get_host().register_plugin(_BrokenExportPlugin(), name="broken-export")
    spec = tiny_spec(tmp_path, epochs=1)
    spec["exporters"] = [{"type": "broken_export"}]
    with pytest.raises(VitcoreError, match="cannot export this model"):
        train(load_dict(spec))
    summary = json.loads((tmp_path / "runs" / "tiny" / "v1" / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == "VitcoreError: cannot export this model"
    assert summary["epochs_completed"] == 1, "the trained epochs are still on record (and in last.pt)"


def test_bad_data_leaves_no_empty_version_behind(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["data"]["root"] = str(tmp_path / "missing")
    with pytest.raises(VitcoreError, match="missing does not exist"):
        train(load_dict(spec))
    assert not (tmp_path / "runs").exists()
