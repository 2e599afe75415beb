"""The torch_export exporter: a dynamic-batch .pt2 program, verified on real images before it counts."""

from __future__ import annotations

import json

import pytest
import torch

from vitcore.builtin import program_export
from vitcore.engine.trainer import train
from vitcore.errors import VitcoreError
from vitcore.hashing import sha256
from vitcore.spec import load_dict
from vitcore.testing import run_cli, tiny_spec


def test_a_run_exports_a_verified_program_that_loads_without_the_model_code(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1)
    spec["exporters"] = [{"type": "torch_export"}]
    run_dir = train(load_dict(spec)).run_dir
    record = json.loads((run_dir / "exports" / "torch_export.json").read_text())
    assert record["max_abs_diff"] <= 1e-4 and record["top1_agreement"] == 1.0
    assert record["batch_sizes"] == [1, 4] and record["images_checked"] == 5
    assert record["sha256"] == sha256(run_dir / "exports" / "model.pt2")

    program = torch.export.load(run_dir / "exports" / "model.pt2").module()
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert program(torch.randn(7, 3, 32, 32)).shape == (7, 3), "the batch dimension is dynamic"
    assert best["classes"] == ["blue", "green", "red"]
    verified = run_cli("runs", "verify", str(run_dir))
    assert verified.returncode == 0, verified.stderr


def test_a_failed_check_is_an_error_and_leaves_no_file(tmp_path, monkeypatch):
    spec = tiny_spec(tmp_path, epochs=1)
    spec["exporters"] = [{"type": "torch_export"}]
    monkeypatch.setattr(program_export, "compare", lambda *a: {"max_abs_diff": 0.5, "top1_agreement": 0.5})
    with pytest.raises(VitcoreError, match="the saved program disagrees with the model"):
        train(load_dict(spec))
    exports = tmp_path / "runs" / "tiny" / "v1" / "exports"
    assert list(exports.iterdir()) == []
