"""torchvision's policy augmentations (rand_augment, trivial_augment, auto_augment) with a timm
model, whose default interpolation is bicubic: torchvision warps tensors only with nearest or
bilinear, and the run used to die in its data-loader workers after the spec validated."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("decode", ["cache", "loader"])
def test_policy_augmentations_train_a_bicubic_timm_model_in_loader_workers(tmp_path, image_folder, tiny, decode):
    spec = {
        "name": "policies",
        "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(image_folder(tmp_path / "data")), "val_fraction": 0.34},
        "model": {"type": "timm_vit", **tiny, "depth": 1},
        "augmentations": [{"type": "random_resized_crop"}, {"type": "rand_augment", "num_ops": 3, "magnitude": 15},
                          {"type": "trivial_augment"}, {"type": "auto_augment"}],
        "train": {"epochs": 1, "batch_size": 4, "warmup_epochs": 0, "num_workers": 2, "decode": decode},
        "sinks": [], "visualizers": [], "exporters": [],
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    run = subprocess.run([sys.executable, "-m", "vitcore", "run", str(path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    (summary_path,) = (tmp_path / "runs").glob("policies/v*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "completed" and summary["steps"] == 3  # 12 training images, batches of 4
    assert json.loads((summary_path.parent / "spec.json").read_text())["train"]["decode"] == decode
