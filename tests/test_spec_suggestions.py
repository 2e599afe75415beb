"""Spec fields: a misspelt one gets a "did you mean", and --set takes the path errors print."""

from __future__ import annotations

import pytest

from vitcore import spec as spec_module
from vitcore.errors import SpecError
from vitcore.testing import run_cli, tiny_spec, write_spec


def error_of(tmp_path, spec: dict, *overrides: str) -> str:
    path = write_spec(tmp_path / "spec.json", spec)
    with pytest.raises(SpecError) as caught:
        spec_module.load(path, list(overrides))
    return str(caught.value)


def test_a_misspelt_train_field_suggests_the_real_one_on_the_command_line(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["train"]["epoch"] = 3
    path = write_spec(tmp_path / "spec.json", spec)
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"Error: {path}: train.epoch: unknown field; did you mean 'epochs'? "
                                     "(see docs/SPEC.md)")


def test_suggestions_at_every_level_of_the_spec(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["agumentations"] = []
    spec["train"]["zzz"] = 1
    lines = error_of(tmp_path, spec).splitlines()
    assert any(line.endswith("agumentations: unknown field; did you mean 'augmentations'? (see docs/SPEC.md)")
               for line in lines), lines
    assert any(line.endswith("train.zzz: unknown field (check the spelling; see docs/SPEC.md)")
               for line in lines), lines

    # A component's options (checked once the spec's shape is right): its own fields, and where to read them.
    spec = tiny_spec(tmp_path)
    spec["model"]["init_frm"] = "runs/old"
    spec["model"]["dpeth"] = 2
    spec["sinks"] = [{"type": "tensorboard", "flush_sec": 3}]
    lines = error_of(tmp_path, spec).splitlines()
    assert any(line.endswith("model.dpeth: unknown field; did you mean 'depth'? "
                             "(`vitcore plugins show torchvision_vit` lists its options)") for line in lines), lines
    assert any("model.init_frm: unknown field; did you mean 'init_from'?" in line for line in lines), lines
    assert any(line.endswith("sinks[0].flush_sec: unknown field; did you mean 'flush_secs'? "
                             "(`vitcore plugins show tensorboard` lists its options)") for line in lines), lines


def test_set_takes_the_list_index_form_that_errors_print(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["augmentations"] = [{"type": "horizontal_flip"}, {"type": "horizontal_flip", "p": 2}]
    message = error_of(tmp_path, spec)
    assert "augmentations[1].p: Input should be less than or equal to 1" in message
    path = write_spec(tmp_path / "spec.json", spec)
    fixed = spec_module.load(path, ["augmentations[1].p=0.3"])  # the path exactly as the error wrote it
    assert [a.options.p for a in fixed.augmentations] == [0.5, 0.3]
    dotted = spec_module.load(path, ["augmentations.1.p=0.3"])
    assert dotted.to_dict() == fixed.to_dict()
    nested = spec_module.load(path, ["augmentations[1]={\"type\": \"vertical_flip\"}", "sinks[0].flush_secs=3"])
    assert [a.type for a in nested.augmentations] == ["horizontal_flip", "vertical_flip"]
    assert nested.sinks[-1].options.flush_secs == 3

    result = run_cli("validate", str(path), "--set", "augmentations[1].p=0.3")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("override", "message"), [
    ("augmentations[x].p=1", r"'augmentations\[x\]\.p' is not a field path; write FIELD.FIELD, with list items "
                             r"as FIELD\[INDEX\] or FIELD.INDEX"),
    ("train..lr=1", "'train..lr' is not a field path"),
    ("augmentations[5].p=1", r"'5' is not an index of a list of 2 items|list index '5' out of range"),
    ("=3", "the field path is empty"),
])
def test_a_bad_field_path_says_how_to_write_one(tmp_path, override, message):
    spec = tiny_spec(tmp_path)
    spec["augmentations"] = [{"type": "horizontal_flip"}, {"type": "vertical_flip"}]
    path = write_spec(tmp_path / "spec.json", spec)
    with pytest.raises(SpecError, match=message):
        spec_module.load(path, [override])
