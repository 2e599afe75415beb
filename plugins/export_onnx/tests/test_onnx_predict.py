"""``vitcore predict model.onnx``: torch-free, the eval transform in numpy, the run's answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from vitcore_export_onnx import model_file_predictor
from vitcore_export_onnx.preprocess import prepare

from vitcore.api import Preprocessing, VitcoreError
from vitcore.testing import make_image_folder

#: Runs ``vitcore predict`` in this process, then reports every torch module that got imported.
TORCH_FREE_PREDICT = """
import runpy, sys
sys.argv = ["vitcore", "predict", *sys.argv[1:]]
try:
    runpy.run_module("vitcore", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print("TORCH MODULES", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision")), file=sys.stderr)
sys.exit(code)
"""


def _images(root: Path) -> list[str]:
    """The three colours at the model's size and resized to 45x61 (so the resize and crop matter)."""
    folder = make_image_folder(root, per_class=1, size=32, seed=7)
    paths = sorted(folder.rglob("*.png"))
    for path in list(paths):
        resized = path.with_name(f"{path.stem}-big.png")
        Image.open(path).resize((45, 61), Image.Resampling.BICUBIC).save(resized)
        paths.append(resized)
    return [str(p) for p in paths]


def test_predict_on_the_onnx_file_needs_no_torch_and_agrees_with_the_run(onnx_run, tmp_path):
    from vitcore.api import load_run_model, predict

    images = _images(tmp_path / "images")
    model = onnx_run / "exports" / "model.onnx"
    done = subprocess.run([sys.executable, "-c", TORCH_FREE_PREDICT, str(model), *images, "--top-k", "2", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "TORCH MODULES []" in done.stderr, done.stderr
    from_onnx = json.loads(done.stdout)
    from_run = predict(load_run_model(onnx_run), [Path(p) for p in images], top_k=2)
    assert [r["image"] for r in from_onnx] == images
    for onnx_result, run_result in zip(from_onnx, from_run):
        assert len(onnx_result["top"]) == 2
        assert [t["label"] for t in onnx_result["top"]] == [t["label"] for t in run_result["top"]]
        for ours, theirs in zip(onnx_result["top"], run_result["top"]):
            assert ours["probability"] == pytest.approx(theirs["probability"], abs=2e-3)
    assert [r["top"][0]["label"] for r in from_onnx] == ["blue", "green", "red"] * 2

    int8 = model_file_predictor(path=onnx_run / "exports" / "model.int8.onnx")([Path(p) for p in images], 1)
    assert [r["top"][0]["label"] for r in int8] == [r["top"][0]["label"] for r in from_onnx]


@pytest.mark.parametrize(("interpolation", "crop_pct", "max_step"), [
    ("bilinear", 1.0, 1), ("bicubic", 0.875, 1), ("nearest", 0.875, 0), ("nearest-exact", 1.0, 0),
])
def test_numpy_preprocessing_matches_the_eval_transform(tmp_path, interpolation, crop_pct, max_step):
    """PIL and torchvision antialias alike; they may round a pixel one step apart, never more."""
    from vitcore.api import eval_transform, normalize

    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    small = Image.fromarray(rng.normal(128, 60, size=(15, 11, 3)).clip(0, 255).astype("uint8"))
    small.resize((45, 61), Image.Resampling.BICUBIC).save(path)
    pre = Preprocessing(32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation=interpolation,
                        crop_pct=crop_pct)
    expected = normalize(eval_transform(pre)(Image.open(path).convert("RGB"))[None], pre)
    ours = prepare(path, pre.to_dict())
    assert ours.shape == (3, 32, 32) and ours.dtype == np.float32
    steps = np.abs(ours - expected[0].numpy()) * np.asarray(pre.std).reshape(3, 1, 1) * 255
    assert steps.max() <= max_step + 1e-3


def test_files_it_cannot_run(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    assert model_file_predictor(path=tmp_path / "model.pt") is None
    plain = tmp_path / "plain.onnx"
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(plain))
    image = make_image_folder(tmp_path / "images", classes=("red",), per_class=1) / "red" / "0.png"
    with pytest.raises(VitcoreError, match="no vitcore metadata .*vitcore.classes"):
        model_file_predictor(path=plain)([image], 1)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(VitcoreError, match="onnxruntime cannot load this file"):
        model_file_predictor(path=garbage)([image], 1)
