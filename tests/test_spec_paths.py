"""Relative paths in a spec resolve against the spec file's folder, from any working directory;
``--set`` values against the working directory; the run's spec.json holds them absolute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vitcore import spec as spec_module
from vitcore.testing import TINY_VIT, make_image_folder, run_cli, write_spec

REPO = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """project/work/spec.json naming its data, weights and output folder relatively; an unrelated folder."""
    work = tmp_path / "project" / "work"
    make_image_folder(work / "data")
    from vitcore.components import ModelContext

    builder = spec_module.load_dict({"data": {"type": "shapes"}, "model": dict(TINY_VIT)}).model.instantiate()
    net = builder.build(ModelContext(num_classes=3, class_names=["blue", "green", "red"]))
    (work / "weights").mkdir()
    torch.save(net.state_dict(), work / "weights" / "start.pth")
    spec = {
        "name": "tiny",
        "output_dir": "out",
        "data": {"type": "imagefolder", "root": "data", "val_fraction": 0.34},
        "model": dict(TINY_VIT, weights="weights/start.pth"),
        "augmentations": [],
        "train": {"epochs": 1, "batch_size": 4, "warmup_epochs": 0, "num_workers": 0},
        "sinks": [],
        "visualizers": [],
        "exporters": [{"type": "torch"}],
    }
    write_spec(work / "spec.json", spec)
    finetune = dict(spec, name="tuned")
    finetune["model"] = dict(TINY_VIT, init_from="out/tiny/v1")
    write_spec(work / "finetune.json", finetune)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return work, elsewhere


def test_a_spec_in_a_sub_folder_runs_from_two_working_directories(tmp_path):
    work, elsewhere = _project(tmp_path)
    env = {"VITCORE_CACHE": str(tmp_path / "cache")}

    first = run_cli("run", "work/spec.json", cwd=work.parent, env=env)
    assert first.returncode == 0, first.stderr
    run_dir = work / "out" / "tiny" / "v1"
    recorded = json.loads((run_dir / "spec.json").read_text())
    assert recorded["data"]["root"] == str(work / "data")
    assert recorded["model"]["weights"] == str(work / "weights" / "start.pth")
    assert recorded["output_dir"] == str(work / "out")

    # From an unrelated folder: init_from "out/tiny/v1" is the run above, next to the spec file.
    second = run_cli("run", str(Path("..") / "project" / "work" / "finetune.json"), cwd=elsewhere, env=env)
    assert second.returncode == 0, second.stderr
    tuned = work / "out" / "tuned" / "v1"
    summary = json.loads((tuned / "summary.json").read_text())
    assert summary["lineage"]["source_run"]["path"] == str(run_dir)
    assert json.loads((tuned / "spec.json").read_text())["model"]["init_from"] == str(run_dir)
    assert not list(elsewhere.iterdir()), "nothing is written into the working directory"

    # spec.json's absolute paths: exporting again from a third folder finds the validation images.
    again = run_cli("export", str(run_dir), "--format", "torch", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "not available" not in again.stderr, again.stderr


def test_set_values_are_relative_to_the_working_directory(tmp_path):
    work, elsewhere = _project(tmp_path)
    make_image_folder(elsewhere / "other", classes=("red", "blue"))
    env = {"VITCORE_CACHE": str(tmp_path / "cache")}
    shown = run_cli("validate", str(work / "spec.json"), "--print", "--set", "data.root=other",
                    "--set", "output_dir=mine", cwd=elsewhere, env=env)
    assert shown.returncode == 0, shown.stderr
    resolved = json.loads(shown.stdout)
    assert resolved["data"]["root"] == str(elsewhere / "other")
    assert resolved["output_dir"] == str(elsewhere / "mine")
    assert resolved["model"]["weights"] == str(work / "weights" / "start.pth")  # still from the file
    # The same --set value from the spec's folder names another folder, which does not exist.
    missing = run_cli("validate", "spec.json", "--set", "data.root=other", cwd=work, env=env)
    assert missing.returncode == 1 and f"{work / 'other'} does not exist" in missing.stderr


def test_default_output_dir_is_the_working_directory_and_dict_specs_take_a_base_dir(tmp_path, monkeypatch):
    work, elsewhere = _project(tmp_path)
    monkeypatch.chdir(elsewhere)
    spec = json.loads((work / "spec.json").read_text())
    del spec["output_dir"]
    from_file = spec_module.load(write_spec(work / "nodir.json", spec))
    assert from_file.spec.output_dir == str(elsewhere / "runs") and from_file.base_dir == work
    from_dict = spec_module.load_dict(spec)
    assert from_dict.data.options.root == str(elsewhere / "data") and from_dict.base_dir == elsewhere
    based = spec_module.load_dict(spec, base_dir=work)
    assert based.data.options.root == str(work / "data") and based.base_dir == work
    assert spec_module.load_dict(dict(spec, output_dir="~/x")).spec.output_dir == str(Path.home() / "x")


def test_hub_ids_stay_names_and_folders_become_paths(tmp_path, monkeypatch):
    pytest.importorskip("vitcore_vit_hf")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work" / "local-vit").mkdir(parents=True)
    base = {"data": {"type": "shapes"}}
    hub = spec_module.load_dict({**base, "model": {"type": "hf_vit", "pretrained": "google/vit-base-patch16-224"}},
                                base_dir=tmp_path / "work")
    assert hub.model.options.pretrained == "google/vit-base-patch16-224"
    folder = spec_module.load_dict({**base, "model": {"type": "hf_vit", "pretrained": "local-vit"}},
                                   base_dir=tmp_path / "work")
    assert folder.model.options.pretrained == str(tmp_path / "work" / "local-vit")


def test_the_examples_resolve_from_the_repository_root(monkeypatch):
    monkeypatch.chdir(REPO)
    quickstart = spec_module.load(Path("examples/quickstart.json"))
    assert quickstart.spec.output_dir == str(REPO / "runs")  # `make demo` writes runs/quickstart/v<N>
    finetune = spec_module.load(Path("examples/shapes_finetune.json"))
    assert finetune.spec.model.init_from == str(REPO / "runs" / "quickstart")
