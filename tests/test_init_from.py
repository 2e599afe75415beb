"""model.init_from: a new run starts from an earlier run's weights, with lineage recorded."""

from __future__ import annotations

import json

import pytest
import torch

from vitcore.engine.trainer import train
from vitcore.errors import SpecError, VitcoreError
from vitcore.spec import load_dict
from vitcore.testing import make_image_folder, run_cli, tiny_spec


@pytest.fixture
def first_run(tmp_path):
    result = train(load_dict(tiny_spec(tmp_path, epochs=1)))
    return result.run_dir


def _weights(run_dir, name="last.pt"):
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)["model"]


def test_fine_tuning_on_other_classes_and_size_keeps_every_weight_but_head_and_positions(tmp_path, first_run):
    data = make_image_folder(tmp_path / "other", classes=("yellow", "magenta"), per_class=6, size=48)
    spec = tiny_spec(tmp_path, epochs=1, lr=1e-12)  # a step that changes nothing measurable
    spec["name"] = "finetuned"
    spec["data"]["root"] = str(data)
    spec["model"].update(image_size=48, init_from=str(first_run))
    result = train(load_dict(spec))

    source, tuned = _weights(first_run, "best.pt"), _weights(result.run_dir, "best.pt")
    assert tuned["heads.head.weight"].shape == (2, 32)
    assert tuned["encoder.pos_embedding"].shape == (1, 1 + 36, 32)
    for key in source:
        if key not in {"heads.head.weight", "heads.head.bias", "encoder.pos_embedding"}:
            assert torch.allclose(source[key], tuned[key], atol=1e-6), key
    assert torch.allclose(source["encoder.pos_embedding"][:, 0], tuned["encoder.pos_embedding"][:, 0], atol=1e-6)

    lineage = result.summary["lineage"]
    assert lineage["source_run"]["version"] == "v1" and lineage["source_classes"] == ["blue", "green", "red"]
    assert lineage["new_head"] == ["heads.head.weight", "heads.head.bias"]
    assert lineage["resized"] == ["encoder.pos_embedding"]
    assert json.loads((result.run_dir / "spec.json").read_text())["model"]["init_from"] == str(first_run)
    shown = json.loads(run_cli("runs", "show", str(result.run_dir)).stdout)
    assert shown["summary"]["lineage"]["checkpoint"].endswith("best.pt")


def test_same_classes_keep_the_head(tmp_path, first_run):
    spec = tiny_spec(tmp_path, epochs=1, lr=1e-12)
    spec["name"] = "again"
    spec["model"]["init_from"] = str(first_run / "checkpoints" / "best.pt")
    result = train(load_dict(spec))
    assert result.summary["lineage"]["new_head"] == []
    assert torch.allclose(_weights(first_run, "best.pt")["heads.head.weight"],
                          _weights(result.run_dir, "best.pt")["heads.head.weight"], atol=1e-6)


def test_an_incompatible_or_missing_source_is_a_clear_error(tmp_path, first_run):
    spec = tiny_spec(tmp_path, epochs=1)
    spec["model"].update(embed_dim=64, init_from=str(first_run))
    with pytest.raises(VitcoreError, match=r"model.init_from: .*best.pt does not fit this model .*conv_proj"):
        train(load_dict(spec))
    spec["model"].update(embed_dim=32, init_from=str(tmp_path / "nowhere"))
    with pytest.raises(VitcoreError, match="nowhere does not exist"):
        train(load_dict(spec))
    spec["model"]["init_from"] = 3
    with pytest.raises(SpecError, match="model.init_from: Input should be a valid string"):
        load_dict(spec)
