"""Kill a real training process with SIGKILL at chosen moments, resume it, and compare the final
weights tensor by tensor with an uninterrupted run.

The moments: right after last.pt was renamed but before the epoch's record reached
metrics.jsonl; in the middle of writing last.pt; between two recovery checkpoints inside an
epoch. With data-loader workers 0 and 2: a sample's augmentation draws are seeded by the sample
and epoch, so the worker count never changes what a run computes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from vitcore.testing import make_image_folder, tiny_spec, write_spec

#: A child process: registers the fault-injecting sink, optionally breaks torch.save, runs the CLI.
CHILD = textwrap.dedent('''
    import os, signal, sys
    from pathlib import Path
    import vitcore
    from vitcore.components import MetricSink, Options


    class KillOptions(Options):
        event: str = "epoch"
        at: int = 0  # epoch (event epoch) or step (event train) at which to die
        marker: str = ""


    class KillSink(MetricSink):
        """Dies by SIGKILL once, at one record (listed before jsonl: that record is not written)."""
        name = "kill_once"
        Options = KillOptions

        def log(self, record):
            o = self.options
            key = "epoch" if o.event == "epoch" else "step"
            if record["event"] == o.event and record[key] == o.at and not Path(o.marker).exists():
                Path(o.marker).write_text("killed")
                os.kill(os.getpid(), signal.SIGKILL)


    class Plugin:
        @vitcore.hookimpl
        def register_metric_sinks(self, register):
            register(KillSink)


    kill_on_save = int(os.environ.get("KILL_ON_LAST_SAVE", "0"))
    if kill_on_save:
        import torch
        real_save, count = torch.save, [0]

        def save(obj, path, *args, **kwargs):
            if Path(path).name.startswith(".last.pt"):
                count[0] += 1
                if count[0] == kill_on_save:  # half a file on disk, then death before the rename
                    Path(path).write_bytes(b"PK" + b"\\0" * 1000)
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_save(obj, path, *args, **kwargs)

        torch.save = save

    from vitcore.plugins import get_host
    get_host().register_plugin(Plugin(), "fault-injection")
    from vitcore.cli import main
    main(sys.argv[1:])
''')


def _spec(tmp_path: Path, data: Path, name: str, workers: int, kill: dict | None = None, **train) -> Path:
    sinks = ([{"type": "kill_once", "marker": str(tmp_path / f"{name}.killed"), **kill}] if kill else [])
    spec = {
        "name": name,
        "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(data), "val_fraction": 0.25},
        "model": {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32,
                  "num_heads": 2, "dropout": 0.1},
        "augmentations": [{"type": "random_resized_crop"}, {"type": "horizontal_flip"}],
        "train": {"epochs": 3, "batch_size": 4, "lr": 0.003, "warmup_epochs": 0.5, "num_workers": workers,
                  "log_every_steps": 1, **train},
        "sinks": sinks + [{"type": "jsonl"}],
        "visualizers": [], "exporters": [],
    }
    return write_spec(tmp_path / f"{name}.json", spec)


def _cli(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["model"]


def _epoch_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "epoch"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run (workers 0) every interrupted one must equal exactly."""
    tmp_path = tmp_path_factory.mktemp("faults")
    data = make_image_folder(tmp_path / "data", per_class=8)
    done = _cli(tmp_path, "run", str(_spec(tmp_path, data, "reference", 0)))
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "runs" / "reference" / "v1"
    return tmp_path, data, _weights(run_dir), _epoch_records(run_dir)


CASES = {
    # kill point                          workers  injected fault                       extra train settings
    "after-last.pt-before-record-w0": (0, {"kill": {"event": "epoch", "at": 2}}, {}),
    "while-writing-last.pt-w0": (0, {"env": {"KILL_ON_LAST_SAVE": "2"}}, {}),
    "after-last.pt-before-record-w2": (2, {"kill": {"event": "epoch", "at": 1}}, {}),
    "mid-epoch-recovery-w2": (2, {"kill": {"event": "train", "at": 11}}, {"checkpoint_every_steps": 2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_killed_and_resumed_run_ends_bit_identical_to_an_uninterrupted_one(reference, case):
    tmp_path, data, expected, expected_epochs = reference
    workers, fault, train = CASES[case]
    name = case.replace(".", "_")
    spec = _spec(tmp_path, data, name, workers, kill=fault.get("kill"), **train)
    killed = _cli(tmp_path, "run", str(spec), env=fault.get("env"))
    assert killed.returncode == -signal.SIGKILL, f"the fault was not reached: {killed.stderr[-2000:]}"
    run_dir = tmp_path / "runs" / name / "v1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "running", "a SIGKILL leaves no chance to write anything"

    listed = _cli(tmp_path, "runs", "list", str(tmp_path / "runs"), "--json")
    row = next(r for r in json.loads(listed.stdout) if r["name"] == name)
    assert row["status"] == "interrupted", "nobody holds the lock: the process is gone"

    resumed = _cli(tmp_path, "resume", str(run_dir), env={"KILL_ON_LAST_SAVE": "0"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert not list(run_dir.rglob(".*.tmp")), "temp files of the killed writer are cleaned up"

    got = _weights(run_dir)
    assert got.keys() == expected.keys()
    different = [k for k in expected if not torch.equal(got[k], expected[k])]
    assert not different, f"tensors that differ from the uninterrupted run: {different}"
    epochs = _epoch_records(run_dir)
    assert [r["epoch"] for r in epochs] == [1, 2, 3], "every completed epoch has exactly one record"
    assert [r["val_acc1"] for r in epochs] == [r["val_acc1"] for r in expected_epochs]
    assert [r["val_loss"] for r in epochs] == [r["val_loss"] for r in expected_epochs]
    if "recovery" in case:
        assert summary["resumed"][0]["from_epoch"] == 2, "the kill at step 11 came inside epoch 3"
        assert [r["train_loss"] for r in epochs] == [r["train_loss"] for r in expected_epochs], \
            "the epoch's running sums continue from the recovery checkpoint"


def test_a_second_process_in_a_run_folder_is_refused_naming_the_holder(tmp_path):
    """While one process holds the run folder, `vitcore resume` of it is refused; once the
    holder is gone (SIGKILL), the lock is free and the next resume takes over."""
    from vitcore.run_lock import RunLock

    run_dir = tmp_path / "runs" / "busy" / "v1"
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f'''
        import sys, time
        from vitcore.run_lock import RunLock
        lock = RunLock(__import__("pathlib").Path({str(run_dir)!r})).acquire()
        print("held", flush=True)
        time.sleep(120)
    ''')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (run_dir / "summary.json").write_text(json.dumps({"status": "running"}))
        write_spec(run_dir / "spec.json", tiny_spec(tmp_path))
        refused = _cli(tmp_path, "resume", str(run_dir))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert f"process {holder.pid} on" in refused.stderr and "cannot resume it" in refused.stderr
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(run_dir).acquire()
    assert lock.took_over is not None and lock.took_over["pid"] == holder.pid, "a dead holder's lock is taken over"
    lock.release()


def test_with_ema_a_run_killed_mid_epoch_resumes_to_the_same_weights_and_average(reference):
    tmp_path, data, _, _ = reference
    ema = {"ema": {"decay": 0.95}, "checkpoint_every_steps": 2}
    uninterrupted = _cli(tmp_path, "run", str(_spec(tmp_path, data, "ema-reference", 0, **ema)))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    spec = _spec(tmp_path, data, "ema-killed", 0, kill={"event": "train", "at": 7}, **ema)
    assert _cli(tmp_path, "run", str(spec)).returncode == -signal.SIGKILL
    run_dir = tmp_path / "runs" / "ema-killed" / "v1"
    resumed = _cli(tmp_path, "resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = torch.load(tmp_path / "runs" / "ema-reference" / "v1" / "checkpoints" / "last.pt", weights_only=True)
    got = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        state, want = (got[part], expected[part]) if part == "model" else (got[part]["module"], expected[part]["module"])
        assert [k for k in want if not torch.equal(state[k], want[k])] == [], f"{part} differs"
    assert got["ema"]["updates"] == expected["ema"]["updates"]
