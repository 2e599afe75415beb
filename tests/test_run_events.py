"""The run's moments (plugin API 1.3): components built once, history in memory, epoch_end and
run_end for sinks and hooks, StopRun ending a run cleanly, failures naming their component."""

from __future__ import annotations

import json

import pytest

import vitcore
from vitcore.components import MetricSink, StopRun, Visualizer
from vitcore.engine.trainer import train
from vitcore.errors import VitcoreError
from vitcore.spec import load_dict
from vitcore.testing import registered_plugin, tiny_spec, write_spec


class Recorder(MetricSink):
    """Keeps every call it gets, on the class, so a test can read them after the run."""

    name = "recorder"
    calls: list = []
    receivers: set = set()

    def log(self, record):
        self.calls.append(("log", record["event"], record["step"]))
        self.receivers.add(id(self))

    def epoch_end(self, event):
        self.calls.append(("epoch_end", event.epoch, event.epochs, event.improved,
                           [r["event"] for r in event.history].count("epoch")))

    def run_end(self, event):
        self.calls.append(("run_end", event.status, event.summary["status"], len(event.history)))

    def close(self):
        self.calls.append(("close",))


class StopAtEpoch2(MetricSink):
    name = "stop_at_2"

    def log(self, record):
        if record["event"] == "epoch" and record["epoch"] == 2:
            raise StopRun("pruned", "val_acc1 below the median at epoch 2")


class Broken(MetricSink):
    name = "broken_sink"

    def log(self, record):
        if record["event"] == "epoch":
            raise RuntimeError("disk says no")


class CountingVisualizer(Visualizer):
    name = "counting_viz"
    seen: list = []
    renderers: set = set()

    def draws_at(self, epoch, final):
        return final or epoch % 2 == 0

    def render(self, ctx):
        self.renderers.add(id(self))
        self.seen.append((ctx.epoch, ctx.final, [dict(r) for r in ctx.records]))
        return []


class Plugin:
    @vitcore.hookimpl
    def register_metric_sinks(self, register):
        for sink in (Recorder, StopAtEpoch2, Broken):
            register(sink)

    @vitcore.hookimpl
    def register_visualizers(self, register):
        register(CountingVisualizer)


def on_disk_records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def plugin():
    Recorder.calls, Recorder.receivers = [], set()
    CountingVisualizer.seen, CountingVisualizer.renderers = [], set()
    with registered_plugin(Plugin(), "events-test"):
        yield


def test_components_are_built_once_and_get_every_moment_in_order(tmp_path, plugin):
    spec = tiny_spec(tmp_path, epochs=3)
    spec["sinks"] = [{"type": "recorder"}]
    spec["visualizers"] = [{"type": "counting_viz"}]
    result = train(load_dict(spec))

    assert len(Recorder.receivers) == 1 and len(CountingVisualizer.renderers) == 1, "one instance for the run"
    moments = [c for c in Recorder.calls if c[0] != "log"]
    assert [m[0] for m in moments] == ["epoch_end"] * 3 + ["run_end", "close"]
    assert [m[1] for m in moments[:3]] == [1, 2, 3]
    assert all(m[2] == 3 for m in moments[:3]), "epoch_end knows the planned epoch count"
    assert [m[4] for m in moments[:3]] == [1, 2, 3], "the history holds the epoch's own record"
    assert moments[3][1] == moments[3][2] == "completed"
    assert moments[0][3] is True, "the first epoch always improves on nothing"

    # draws_at decides alone: epoch 2 (even) and the final drawing, nothing at epochs 1 and 3.
    assert [(epoch, final) for epoch, final, _ in CountingVisualizer.seen] == [(2, False), (3, True)]
    assert CountingVisualizer.seen[-1][2] == on_disk_records(result.run_dir), "visualizers get the in-memory history: all of it"


def test_a_sink_raising_stoprun_ends_the_run_cleanly_with_its_status(tmp_path, plugin):
    spec = tiny_spec(tmp_path, epochs=4)
    spec["sinks"] = [{"type": "recorder"}, {"type": "stop_at_2"}]
    spec["meta"] = {"sweep": {"trial": 3}}
    result = train(load_dict(spec))

    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["epochs_completed"] == 2
    assert summary["stopped"] == {"epoch": 2, "reason": "val_acc1 below the median at epoch 2"}
    assert summary["meta"] == {"sweep": {"trial": 3}}, "the spec's meta is copied into the summary"
    assert summary["started"] <= summary["finished"]
    assert (result.run_dir / "checkpoints" / "last.pt").is_file()
    assert not (result.run_dir / "exports" / "model.safetensors").exists(), "a pruned run skips exports"
    epochs = [r for r in on_disk_records(result.run_dir) if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2], "the stopping epoch's record is kept"
    run_end = [c for c in Recorder.calls if c[0] == "run_end"]
    assert run_end == [("run_end", "pruned", "pruned", len(on_disk_records(result.run_dir)))]


def test_an_epoch_end_hook_may_stop_the_run_and_run_end_comes_for_every_status(tmp_path, plugin):
    seen = []

    class Hooks:
        @vitcore.hookimpl
        def epoch_end(self, event):
            seen.append(("epoch", event.epoch, event.record["val_acc1"]))
            if event.epoch == 1:
                raise StopRun("stopped", "enough", finish=True)

        @vitcore.hookimpl
        def run_end(self, event):
            seen.append(("end", event.status, (event.run_dir / "summary.json").is_file()))

    with registered_plugin(Hooks(), "hooks-test"):
        result = train(load_dict(tiny_spec(tmp_path, epochs=3)))
    assert seen[0][:2] == ("epoch", 1) and seen[1] == ("end", "stopped", True)
    assert result.summary["status"] == "stopped"
    assert (result.run_dir / "exports" / "model.safetensors").is_file(), "finish=True still exports"


def test_a_failing_sink_fails_the_run_naming_the_component_and_plugin(tmp_path, plugin):
    spec = tiny_spec(tmp_path, epochs=2)
    spec["sinks"] = [{"type": "recorder"}, {"type": "broken_sink"}]
    with pytest.raises(VitcoreError, match=r"sink 'broken_sink' \(plugin events-test\) failed .*disk says no"):
        train(load_dict(spec))
    summary = json.loads((tmp_path / "runs" / "tiny" / "v1" / "summary.json").read_text())
    assert summary["status"] == "failed" and "broken_sink" in summary["error"]
    assert ("run_end", "failed", "failed") == Recorder.calls[-2][:3] and Recorder.calls[-1] == ("close",)


def test_batch_size_auto_is_recorded_without_changing_the_callers_spec(tmp_path):
    resolved = load_dict(tiny_spec(tmp_path, epochs=1, batch_size="auto"))
    result = train(resolved)
    assert resolved.train.batch_size == "auto", "the caller's spec is left as it was"
    saved = json.loads((result.run_dir / "spec.json").read_text())
    assert isinstance(saved["train"]["batch_size"], int) and saved["train"]["batch_size"] >= 1
    assert result.summary["auto_batch_size"]["chosen"] == saved["train"]["batch_size"]


def test_vitcore_run_exits_0_for_a_stopped_run(tmp_path):
    """A third-party sink installed as a plugin module stops the run; the CLI reports success."""
    package = tmp_path / "stopper"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import vitcore\nfrom vitcore.components import MetricSink, StopRun\n\n"
        "class Stop(MetricSink):\n    name = 'stop_now'\n\n"
        "    def log(self, record):\n        if record['event'] == 'epoch':\n"
        "            raise StopRun('pruned', 'test')\n\n"
        "@vitcore.hookimpl\ndef register_metric_sinks(register):\n    register(Stop)\n"
    )
    spec = tiny_spec(tmp_path, epochs=3)
    spec["sinks"] = [{"type": "stop_now"}]
    path = write_spec(tmp_path / "spec.json", spec)
    code = ("import sys, vitcore.plugins as p, stopper\n"
            "h = p.get_host(); h.register_plugin(stopper, 'stopper')\n"
            "from vitcore.cli import main\nmain(['run', sys.argv[1]])\n")
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "pruned" in done.stdout
    summary = json.loads((tmp_path / "runs" / "tiny" / "v1" / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["epochs_completed"] == 1


def test_a_run_without_a_terminal_prints_a_banner_and_progress_lines_before_epoch_ends(tmp_path):
    from vitcore.testing import run_cli

    spec = tiny_spec(tmp_path, epochs=2, log_every_steps=50)
    spec["sinks"] = [{"type": "console"}]
    done = run_cli("run", str(write_spec(tmp_path / "spec.json", spec)), env={"VITCORE_PROGRESS_SECONDS": "0"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Run {tmp_path / 'runs' / 'tiny' / 'v1'}"
    assert any(line.strip().startswith("data") and "3 classes: blue, green, red" in line for line in lines[:6])
    assert any("schedule  2 epochs x 3 steps, batch 4" in line for line in lines[:6])
    first_epoch_line = next(i for i, line in enumerate(lines) if line.startswith("epoch   1 |"))
    progress = [i for i, line in enumerate(lines) if line.startswith("epoch 1/2 step ")]
    assert progress and progress[0] < first_epoch_line, "progress shows before the epoch's end"
    # log_every_steps 50 on a 3-step epoch still gives two records per epoch (the curve has points).
    records = [json.loads(x) for x in (tmp_path / "runs" / "tiny" / "v1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "train"] == [1, 2, 3, 4, 5, 6]
