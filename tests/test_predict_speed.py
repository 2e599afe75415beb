"""`vitcore predict` imports only what it needs, and the latency benchmark runs (its figures are not
asserted: benchmarks/RESULTS.md records them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from vitcore.testing import tiny_spec, train_spec

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "predict_latency.py"


def test_predict_on_one_image_never_imports_the_compiler_and_the_benchmark_measures_it(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1)
    spec.update(sinks=[], visualizers=[])
    run_dir = train_spec(spec).run_dir
    image = tmp_path / "one.png"
    Image.new("RGB", (50, 40), (200, 30, 30)).save(image)

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "vitcore", "predict", str(run_dir), str(image)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == str(image) and "red" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported and "torchvision" in imported
    assert not {"torch._dynamo", "sympy", "torch._inductor", "timm", "transformers", "matplotlib"} & imported

    done = subprocess.run([sys.executable, str(BENCHMARK), "--run-dir", str(run_dir), "--repeats", "1",
                           "--evaluate-images", "4", "--no-onnx"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert set(result["median_s"]) == {"import_torch", "predict", "evaluate"}
    assert result["predict_vs_import_torch"] == round(result["median_s"]["predict"]
                                                      / result["median_s"]["import_torch"], 3)
    assert f"predict {run_dir} " in result["commands"]["predict"] and result["commands"]["predict"].endswith("one.png")
    assert "cores" in result["machine"]
