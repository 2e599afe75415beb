"""The run spec: defaults, overrides, YAML, and error messages that name the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitcore import spec as spec_module
from vitcore.errors import SpecError
from vitcore.testing import run_cli, tiny_spec, write_spec

REPO = Path(__file__).resolve().parent.parent


def error_of(tmp_path: Path, spec: dict, *overrides: str) -> str:
    path = write_spec(tmp_path / "spec.json", spec)
    with pytest.raises(SpecError) as caught:
        spec_module.load(path, list(overrides))
    return str(caught.value)


def test_a_spec_naming_only_data_and_model_gets_working_defaults(tmp_path):
    resolved = spec_module.load_dict({"data": {"type": "shapes"}, "model": {"type": "torchvision_vit"}})
    out = resolved.to_dict()
    assert out["train"]["epochs"] == 10 and out["train"]["optimizer"] == "adamw"
    assert [s["type"] for s in out["sinks"]] == ["jsonl", "console", "tensorboard"]
    assert [v["type"] for v in out["visualizers"]] == ["curves", "confusion_matrix"]
    assert [e["type"] for e in out["exporters"]] == ["safetensors", "torch"]
    assert [a["type"] for a in out["augmentations"]] == ["random_resized_crop", "horizontal_flip"]
    # Component defaults are filled in, so spec.json repeats the run exactly.
    assert out["model"]["patch_size"] == 16 and out["data"]["image_size"] == 64


def test_field_errors_name_the_file_and_the_field_path(tmp_path):
    spec = tiny_spec(tmp_path, lr=0)
    message = error_of(tmp_path, spec)
    assert f"{tmp_path / 'spec.json'}: train.lr: Input should be greater than 0" in message


def test_unknown_and_missing_fields(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["trian"] = {}
    del spec["model"]
    message = error_of(tmp_path, spec)
    assert "spec.json: model: Field required" in message
    assert "spec.json: trian: unknown field" in message


def test_component_options_are_checked_by_the_component(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["model"]["depth"] = 0
    spec["augmentations"] = [{"type": "horizontal_flip"}, {"type": "horizontal_flip", "p": 2}]
    spec["sinks"] = [{"type": "tensorboard", "flush_sec": 3}]
    message = error_of(tmp_path, spec)
    assert "spec.json: model.depth: Input should be greater than or equal to 1" in message
    assert "spec.json: augmentations[1].p: Input should be less than or equal to 1" in message
    assert "spec.json: sinks[0].flush_sec: unknown field" in message


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": {"type": "shapes"},}')
    with pytest.raises(SpecError, match=r"bad.json: not valid JSON: .* line 1"):
        spec_module.load(bad)
    with pytest.raises(SpecError, match=r"nowhere.json: spec file not found"):
        spec_module.load(tmp_path / "nowhere.json")


def test_yaml_specs_are_read(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("data:\n  type: shapes\nmodel:\n  type: torchvision_vit\n  depth: 2\ntrain:\n  epochs: 4\n")
    resolved = spec_module.load(path)
    assert resolved.train.epochs == 4 and resolved.model.options.depth == 2


def test_set_overrides_single_fields(tmp_path):
    path = write_spec(tmp_path / "spec.json", tiny_spec(tmp_path))
    resolved = spec_module.load(path, ["train.epochs=3", "train.optimizer=sgd", "model.depth=2",
                                       "sinks.0={\"type\": \"csv\"}", "name=other"])
    assert resolved.train.epochs == 3 and resolved.train.optimizer == "sgd"
    assert resolved.model.options.depth == 2
    assert [s.type for s in resolved.sinks] == ["jsonl", "csv"]
    assert resolved.spec.name == "other"
    with pytest.raises(SpecError, match="expected FIELD=VALUE"):
        spec_module.load(path, ["train.epochs"])
    with pytest.raises(SpecError, match="spec.json: train.epochs: Input should be greater than or equal to 1"):
        spec_module.load(path, ["train.epochs=0"])


def test_validate_command_exit_codes_and_messages(tmp_path):
    good = write_spec(tmp_path / "good.json", tiny_spec(tmp_path))
    ok = run_cli("validate", str(good), "--set", "train.epochs=5", "--print")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["train"]["epochs"] == 5

    bad_spec = tiny_spec(tmp_path, lr=-1)
    bad = write_spec(tmp_path / "bad.json", bad_spec)
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {bad}: train.lr: Input should be greater than 0"
    run = run_cli("run", str(bad))
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_docs_spec_reference_is_current():
    from vitcore.specdoc import generate

    current = (REPO / "docs" / "SPEC.md").read_text(encoding="utf-8")
    assert current == generate(), "docs/SPEC.md is stale: run `make docs`"


def test_every_documented_field_has_a_meaning():
    from vitcore.components import KINDS
    from vitcore.plugins import PluginHost
    from vitcore.spec import RunSpec, TrainSpec

    host = PluginHost()
    host.load_builtins_only()
    models = [RunSpec, TrainSpec] + [
        entry.component.Options for kind in KINDS for _, entry in host.registry(kind).items()
    ]
    missing = [f"{m.__qualname__}.{name}" for m in models for name, f in m.model_fields.items()
               if not f.description]
    assert missing == []
