"""The built-in exporters write files that reload to exactly the model's tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from vitcore.builtin import exporters
from vitcore.builtin.exporters import SafetensorsExporter, TorchExporter
from vitcore.components import ExportContext, Preprocessing
from vitcore.hashing import sha256

CLASSES = ["a", "b", "c"]
MODEL_SPEC = {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 1}


def tiny_vit() -> torch.nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2,
                                                hidden_dim=16, mlp_dim=32, num_classes=3).eval()


def tied_model() -> torch.nn.Module:
    """Tied weights, a view of another tensor's storage, and a non-contiguous buffer."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    model[2].weight = model[0].weight
    model.register_buffer("table", torch.arange(12.0).reshape(3, 4).t())
    model.register_buffer("row", model.table.t()[1])
    return model.eval()


def context(run_dir: Path, model: torch.nn.Module) -> ExportContext:
    return ExportContext(run_dir=run_dir, model=model, classes=CLASSES,
                         preprocessing=Preprocessing(image_size=32, mean=(0.1, 0.2, 0.3)),
                         spec={"name": "tiny", "model": MODEL_SPEC, "train": {"epochs": 1}})


def test_registration():
    found = []
    exporters.register_exporters(found.append)
    assert [c.name for c in found] == ["safetensors", "torch"]


@pytest.mark.parametrize("make_model", [tiny_vit, tied_model])
def test_safetensors_reloads_every_tensor(tmp_path, make_model):
    model = make_model()
    weights, info = SafetensorsExporter().export(context(tmp_path / "v1", model))
    assert (weights, info) == (tmp_path / "v1/exports/model.safetensors", tmp_path / "v1/exports/model.json")
    reloaded, state = load_file(weights), model.state_dict()
    assert set(reloaded) == set(state)
    for name, tensor in state.items():
        assert torch.equal(reloaded[name], tensor) and reloaded[name].dtype == tensor.dtype, name
    make_model().load_state_dict(reloaded, strict=True)

    description = json.loads(info.read_text())
    assert description == {
        "classes": CLASSES,
        "preprocessing": {"image_size": 32, "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.5],
                          "interpolation": "bilinear", "crop_pct": 1.0},
        "model_spec": MODEL_SPEC,
        "run": {"name": "tiny", "version": "v1"},
        "weights": {"file": "model.safetensors", "format": "safetensors", "sha256": sha256(weights)},
    }
    with safe_open(weights, framework="pt") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["classes"]) == CLASSES and json.loads(metadata["model_spec"]) == MODEL_SPEC
    assert not list(weights.parent.glob(".*")), "no temporary files left behind"


def test_torch_export_loads_with_weights_only(tmp_path):
    model = tiny_vit()
    (path,) = TorchExporter().export(context(tmp_path, model))
    assert path == tmp_path / "exports" / "model.pt"
    payload = torch.load(path, weights_only=True)
    assert payload["classes"] == CLASSES and payload["model_spec"] == MODEL_SPEC
    assert payload["preprocessing"]["mean"] == [0.1, 0.2, 0.3]
    state = model.state_dict()
    assert set(payload["state_dict"]) == set(state)
    assert all(torch.equal(payload["state_dict"][k], v) for k, v in state.items())
    rebuilt = tiny_vit()
    rebuilt.load_state_dict(payload["state_dict"])
    example = torch.randn(2, 3, 32, 32)
    assert torch.equal(rebuilt(example), model(example))
    assert not list(path.parent.glob(".*")), "no temporary files left behind"
