"""Spec inheritance: ``extends`` chains, cycles, missing bases, list rules, --set on top, and
errors and ``validate --print`` naming the file each value came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitcore import spec as spec_module
from vitcore.errors import SpecError
from vitcore.testing import make_image_folder, run_cli, write_spec

TINY_MODEL = {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32,
              "num_heads": 2}


def _base(tmp_path: Path) -> dict:
    """A complete spec, used as the base the tests extend."""
    data = make_image_folder(tmp_path / "data", per_class=3)
    return {
        "data": {"type": "imagefolder", "root": str(data), "val_fraction": 0.34},
        "model": dict(TINY_MODEL),
        "augmentations": [{"type": "random_resized_crop", "scale": [0.5, 1.0]}, {"type": "horizontal_flip"},
                          {"type": "rand_augment", "num_ops": 2, "magnitude": 9}],
        "train": {"epochs": 7, "lr": 0.002, "label_smoothing": 0.1, "num_workers": 0},
        "sinks": [{"type": "console"}],
    }


def _error(path: Path, *overrides: str) -> str:
    with pytest.raises(SpecError) as caught:
        spec_module.load(path, list(overrides))
    return str(caught.value)


def test_a_chain_merges_objects_key_by_key_and_the_nearest_file_wins(tmp_path):
    write_spec(tmp_path / "base.json", _base(tmp_path))
    write_spec(tmp_path / "middle.json", {"extends": "base.json", "train": {"epochs": 3, "warmup_epochs": 0}})
    top = write_spec(tmp_path / "top.json", {"extends": "middle.json", "name": "top", "train": {"lr": 0.01}})
    out = spec_module.load(top).to_dict()
    assert out["name"] == "top"
    assert out["train"]["epochs"] == 3 and out["train"]["warmup_epochs"] == 0  # middle
    assert out["train"]["lr"] == 0.01  # top over base
    assert out["train"]["label_smoothing"] == 0.1  # base, untouched by the others
    assert out["model"]["depth"] == 1 and "extends" not in out


def test_a_cycle_is_an_error_naming_the_chain(tmp_path):
    write_spec(tmp_path / "a.json", {"extends": "b.json", "name": "a"})
    write_spec(tmp_path / "b.json", {"extends": "c.json"})
    write_spec(tmp_path / "c.json", {"extends": "a.json"})
    a, b, c = (str(tmp_path / name) for name in ("a.json", "b.json", "c.json"))
    message = _error(tmp_path / "a.json")
    assert message.startswith(f"{c}: extends: the specs extend each other in a cycle: {a} -> {b} -> {c} -> {a};")
    write_spec(tmp_path / "self.json", {"extends": "./self.json"})
    assert "cycle" in _error(tmp_path / "self.json")


def test_a_missing_base_names_the_file_and_the_spec_that_asked(tmp_path):
    (tmp_path / "specs").mkdir()
    top = write_spec(tmp_path / "specs" / "top.json", {"extends": "../bases/nothing.json"})
    message = _error(top)
    assert message.startswith(f"{top}: extends: base spec '../bases/nothing.json' not found")
    assert str(tmp_path / "bases" / "nothing.json") in message
    unknown = write_spec(tmp_path / "recipe.json", {"extends": "recipe:small-dta"})
    message = _error(unknown)
    assert "no built-in recipe 'small-dta'" in message and "recipe:small-data" in message
    wrong = write_spec(tmp_path / "wrong.json", {"extends": 3})
    assert "extends: expected a spec file's path" in _error(wrong)


def test_lists_are_replaced_whole_unless_items_are_addressed_by_index(tmp_path):
    write_spec(tmp_path / "base.json", _base(tmp_path))
    whole = write_spec(tmp_path / "whole.json", {"extends": "base.json", "augmentations": [{"type": "vertical_flip"}]})
    assert [a["type"] for a in spec_module.load(whole).to_dict()["augmentations"]] == ["vertical_flip"]

    by_index = write_spec(tmp_path / "index.json", {"extends": "base.json",
                                                    "augmentations": {"2": {"magnitude": 5}, "1": {"type": "vertical_flip"}}})
    out = spec_module.load(by_index).to_dict()["augmentations"]
    assert [a["type"] for a in out] == ["random_resized_crop", "vertical_flip", "rand_augment"]
    assert out[2]["magnitude"] == 5 and out[2]["num_ops"] == 2  # merged into the base's item
    assert out[0]["scale"] == [0.5, 1.0]

    beyond = write_spec(tmp_path / "beyond.json", {"extends": "base.json", "augmentations": {"5": {"p": 1}}})
    message = _error(beyond)
    assert message.startswith(f"{beyond}: augmentations.5: no item 5") and "3 item(s)" in message


def test_another_component_type_replaces_the_base_entry_whole(tmp_path):
    write_spec(tmp_path / "base.json", _base(tmp_path))
    top = write_spec(tmp_path / "top.json", {"extends": "base.json",
                                             "augmentations": {"0": {"type": "resize"}}})
    out = spec_module.load(top).to_dict()["augmentations"][0]
    assert out["type"] == "resize" and "scale" not in out  # random_resized_crop's option did not leak


def test_set_goes_on_top_of_the_merged_spec(tmp_path):
    write_spec(tmp_path / "base.json", _base(tmp_path))
    top = write_spec(tmp_path / "top.json", {"extends": "base.json", "train": {"epochs": 3}})
    out = spec_module.load(top, ["train.epochs=9", "augmentations[2].magnitude=4"]).to_dict()
    assert out["train"]["epochs"] == 9 and out["augmentations"][2]["magnitude"] == 4
    message = _error(top, "train.epochs=0")
    assert f"{top}: train.epochs: Input should be greater than or equal to 1 (given with --set)" in message


def test_field_errors_point_at_the_file_that_set_the_value(tmp_path):
    base = _base(tmp_path)
    base["train"]["lr"] = -1
    base["model"]["depht"] = 2
    (tmp_path / "bases").mkdir()
    write_spec(tmp_path / "bases" / "base.json", base)
    top = write_spec(tmp_path / "top.json", {"extends": "bases/base.json", "train": {"epochs": 0}})
    lines = _error(top).splitlines()
    base_label = str(tmp_path / "bases" / "base.json")
    assert f"{base_label}: train.lr: Input should be greater than 0 (extended by {top})" in lines
    assert f"{top}: train.epochs: Input should be greater than or equal to 1" in lines
    base["train"]["lr"] = 0.001  # now the component's own options are checked
    write_spec(tmp_path / "bases" / "base.json", base)
    top = write_spec(tmp_path / "top.json", {"extends": "bases/base.json", "model": {"depth": 2}})
    message = _error(top)
    assert message.startswith(f"{base_label}: model.depht: unknown field; did you mean 'depth'?")
    assert message.endswith(f"(extended by {top})")


def test_relative_paths_in_a_base_are_relative_to_the_base_files_folder(tmp_path):
    make_image_folder(tmp_path / "shared" / "images", per_class=3)
    base = {**_base(tmp_path), "data": {"type": "imagefolder", "root": "images", "val_fraction": 0.34}}
    write_spec(tmp_path / "shared" / "base.json", base)
    (tmp_path / "project").mkdir()
    top = write_spec(tmp_path / "project" / "spec.json", {"extends": "../shared/base.json", "output_dir": "out"})
    out = spec_module.load(top).to_dict()
    assert out["data"]["root"] == str(tmp_path / "shared" / "images")
    assert out["output_dir"] == str(tmp_path / "project" / "out")  # the top file's own: its folder


def test_validate_print_shows_the_merged_spec_and_each_values_source(tmp_path):
    write_spec(tmp_path / "base.json", _base(tmp_path))
    top = write_spec(tmp_path / "top.json", {"extends": "base.json", "name": "shown", "train": {"epochs": 2}})
    shown = run_cli("validate", str(top), "--print", "--spec-only", "--set", "train.lr=0.005")
    assert shown.returncode == 0, shown.stderr
    resolved = json.loads(shown.stdout)  # stdout stays the resolved spec, for piping
    assert resolved["train"]["epochs"] == 2 and resolved["train"]["label_smoothing"] == 0.1
    sources = {}
    for line in shown.stderr.splitlines()[1:]:
        field, _, rest = line.partition(" = ")
        sources[field] = rest.split()[-1]
    base_label, top_label = str(tmp_path / "base.json"), str(top)
    assert sources["name"] == top_label and sources["train.epochs"] == top_label
    assert sources["train.label_smoothing"] == base_label and sources["model.depth"] == base_label
    assert sources["augmentations[2].magnitude"] == base_label
    assert sources["train.lr"] == "--set"
    assert sources["train.seed"] == "default" and sources["model.mlp_ratio"] == "default"
    assert sources["sinks[0].type"] == "default"  # the jsonl sink the core always adds
    assert sources["sinks[1].type"] == base_label


def test_a_run_folder_keeps_the_merged_spec_and_resumes_without_the_base(tmp_path):
    base = _base(tmp_path)
    base["output_dir"] = str(tmp_path / "runs")
    base["train"].update(epochs=1, batch_size=4, warmup_epochs=0)
    base.update(visualizers=[], exporters=[], augmentations=[])
    write_spec(tmp_path / "base.json", base)
    top = write_spec(tmp_path / "top.json", {"extends": "base.json", "name": "child"})
    first = run_cli("run", str(top))
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "runs" / "child" / "v1"
    saved = json.loads((run_dir / "spec.json").read_text())
    assert "extends" not in saved and saved["train"]["label_smoothing"] == 0.1
    (tmp_path / "base.json").unlink()
    again = run_cli("resume", str(run_dir), "--set", "train.epochs=2")
    assert again.returncode == 0, again.stderr
    assert json.loads((run_dir / "summary.json").read_text())["epochs_completed"] == 2


def test_a_user_error_in_a_chain_exits_2_without_a_traceback(tmp_path):
    write_spec(tmp_path / "a.json", {"extends": "b.json"})
    write_spec(tmp_path / "b.json", {"extends": "a.json"})
    for command in ("validate", "run"):
        result = run_cli(command, str(tmp_path / "a.json"))
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "cycle" in result.stderr
