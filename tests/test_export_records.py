"""Exported files: readable like the rest, every one hashed (runs verify never says "no hash"),
the model card refreshed by a later export, the spec's exporter options reused, and each step's
time printed while `vitcore export` works."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from vitcore.api import Exporter, Options
from vitcore.exporting import run_exporters
from vitcore.hashing import sha256
from vitcore.testing import registered_plugin, run_cli, tiny_spec, train_spec
from vitcore.versions import verify_run


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One finished run exported by safetensors, torch and torch_export (max_batch 64 in its spec)."""
    root = tmp_path_factory.mktemp("exports")
    spec = tiny_spec(root, epochs=1)
    spec["sinks"], spec["visualizers"] = [], []
    spec["exporters"] = [{"type": "safetensors"}, {"type": "torch"}, {"type": "torch_export", "max_batch": 64}]
    return train_spec(spec).run_dir


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    copy = tmp_path / "runs" / "tiny" / "v1"
    shutil.copytree(trained, copy)
    return copy


def test_every_exported_file_is_readable_like_the_rest_of_the_run(trained):
    expected = 0o666 & ~_umask()
    files = sorted(p for p in (trained / "exports").iterdir() if p.is_file())
    assert {p.name for p in files} >= {"model.safetensors", "model.json", "model.pt", "model.pt2",
                                       "torch_export.json", "manifest.json", "MODEL_CARD.md"}
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {oct(expected)}, modes
    assert stat.S_IMODE((trained / "summary.json").stat().st_mode) == expected


def test_runs_verify_knows_every_exported_file(trained):
    result = run_cli("runs", "verify", str(trained))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("no hash")], lines
    by_file = {line.split()[1]: line for line in lines}
    assert set(by_file) == {"exports/model.safetensors", "exports/model.json", "exports/model.pt",
                            "exports/model.pt2", "exports/torch_export.json"}
    assert all(line.startswith("ok ") for line in lines)
    # One line per file, naming every record that hashes it.
    assert by_file["exports/model.safetensors"].endswith("(recorded in exports/manifest.json, exports/model.json)")
    assert by_file["exports/model.pt"].endswith("(recorded in exports/manifest.json)")
    manifest = json.loads((trained / "exports" / "manifest.json").read_text())
    assert list(manifest["exporters"]) == ["safetensors", "torch", "torch_export"]
    entry = manifest["exporters"]["torch"]["files"][0]
    assert entry == {"file": "model.pt", "bytes": (trained / "exports" / "model.pt").stat().st_size,
                     "sha256": sha256(trained / "exports" / "model.pt")}


def test_a_changed_file_fails_verify_through_the_manifest(run_dir):
    (run_dir / "exports" / "model.pt").write_bytes(b"not the model")
    result = run_cli("runs", "verify", str(run_dir))
    assert result.returncode == 1
    assert "MISMATCH exports/model.pt  (recorded in exports/manifest.json)" in result.stdout
    assert "exports/model.pt (mismatch: manifest.json records sha256" in result.stderr


def test_export_reuses_the_spec_options_prints_its_steps_and_refreshes_the_card(run_dir):
    exports = run_dir / "exports"
    card = exports / "MODEL_CARD.md"
    assert "| model.pt2 |" in card.read_text()
    assert run_cli("runs", "tag", str(run_dir), "candidate").returncode == 0
    assert "Tags: candidate." not in card.read_text()

    result = run_cli("export", str(run_dir), "--format", "torch_export")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(exports / "model.pt2"), str(exports / "torch_export.json")]
    steps = result.stderr.splitlines()
    assert steps[0] == f"load the best model of {run_dir} ..."
    assert any(line.startswith(f"load the best model of {run_dir}: done in ") for line in steps)
    assert "export torch_export ..." in steps
    done = next(line for line in steps if line.startswith("export torch_export: done in "))
    assert done.endswith(" s (model.pt2, torch_export.json)")
    record = json.loads((exports / "torch_export.json").read_text())
    assert record["dynamic_batch"] == [1, 64], "the run spec's max_batch, not the exporter's default 4096"

    refreshed = card.read_text()
    assert "Tags: candidate." in refreshed, "the later export wrote the model card again"
    assert f"| model.pt2 | {(exports / 'model.pt2').stat().st_size} | `{sha256(exports / 'model.pt2')}` |" in refreshed
    assert refreshed.count("| model.safetensors |") == 1, "a file two records hash is listed once"

    overridden = run_cli("export", str(run_dir), "--format", "torch_export", "--option", "max_batch=32")
    assert overridden.returncode == 0, overridden.stderr
    assert json.loads((exports / "torch_export.json").read_text())["dynamic_batch"] == [1, 32]
    manifest = json.loads((exports / "manifest.json").read_text())
    assert manifest["exporters"]["torch_export"]["options"]["max_batch"] == 32
    assert [c.status for c in verify_run(run_dir).checks] == ["ok"] * len(verify_run(run_dir).checks)


class _NpyOptions(Options):
    pass


class _PrivateWeights(Exporter):
    """A plugin exporter that records no hash and saves through a 0600 temporary file, as
    libraries that write atomically on their own do."""

    name = "private_weights"
    Options = _NpyOptions

    def export(self, ctx):
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=ctx.out_dir))  # 0700
        final = ctx.out_dir / "weights"
        if final.exists():
            shutil.rmtree(final)
        fd, name = tempfile.mkstemp(dir=folder)  # 0600
        with os.fdopen(fd, "wb") as handle:
            for tensor in ctx.model.state_dict().values():
                handle.write(tensor.numpy().tobytes())
        os.replace(name, folder / "weights.bin")
        os.replace(folder, final)
        return [final / "weights.bin"]


class _Plugin:
    import vitcore

    @vitcore.hookimpl
    def register_exporters(self, register):
        register(_PrivateWeights)


def test_a_plugin_export_without_its_own_record_is_hashed_and_made_readable(run_dir):
    from vitcore.inference import load_run_model
    from vitcore.spec import resolve_component

    loaded = load_run_model(run_dir)
    with registered_plugin(_Plugin(), "private-weights"):
        entry = resolve_component({"type": "private_weights"}, "exporters", "exporters[0]")
        files = run_exporters([entry], run_dir, loaded.model, loaded.classes, loaded.preprocessing,
                              json.loads((run_dir / "spec.json").read_text()))
    weights = run_dir / "exports" / "weights" / "weights.bin"
    assert files == [weights]
    assert stat.S_IMODE(weights.stat().st_mode) == 0o666 & ~_umask()
    assert stat.S_IMODE(weights.parent.stat().st_mode) == 0o777 & ~_umask()
    lines = verify_run(run_dir).lines()
    assert "ok       exports/weights/weights.bin  (recorded in exports/manifest.json)" in lines
    assert not [line for line in lines if line.startswith("no hash")]
    assert "| weights/weights.bin |" in (run_dir / "exports" / "MODEL_CARD.md").read_text()
