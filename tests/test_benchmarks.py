"""Each benchmark command runs on the CPU and prints the figures RESULTS.md records (not timed)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from vitcore.engine.harness import MODELS, make_setup
from vitcore.engine.trainer import train
from vitcore.spec import load_dict
from vitcore.testing import tiny_spec

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_benchmark(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def test_train_step_benchmark_compares_the_engine_with_a_bare_loop():
    out = run_benchmark("train_step.py", "--model", "vit_cpu_small", "--batch", "8", "--steps", "2",
                        "--repeats", "1", "--device", "cpu")
    (result,) = out["results"]
    assert result["engine_images_per_sec"] > 0 and result["bare_images_per_sec"] > 0
    engine, bare = result["engine_images_per_sec"], result["bare_images_per_sec"]
    ratio = engine / bare
    # The rates are printed to 0.1 img/s: on a slow (loaded) machine that alone moves their ratio.
    rounding = ratio * (0.05 / engine + 0.05 / bare) + 1e-4
    assert abs(result["engine_vs_bare"] - ratio) <= rounding
    assert abs(result["engine_vs_bare_median_pair"] - ratio) <= rounding, "one repeat: one pair"
    assert result["peak_host_memory_gib"] > 0 and "torch" in out["machine"]
    # The utilisation figures the CUDA run reports come from the same code on the CPU.
    assert result["flops_per_step"] == 8 * vit_training_flops(**MODELS["vit_cpu_small"], classes=10)
    achieved = result["flops_per_step"] * result["engine_images_per_sec"] / result["batch"]
    assert abs(result["achieved_tflops"] * 1e12 - achieved) < 0.01 * achieved
    assert result["matmul_peak_dtype"] == "float32" and result["matmul_peak_tflops"] > 0
    assert abs(result["mfu_vs_matmul_peak"] - result["achieved_tflops"] / result["matmul_peak_tflops"]) < 0.01


def vit_training_flops(depth: int, embed_dim: int, num_heads: int, patch_size: int, image_size: int,
                       classes: int, mlp_ratio: float = 4.0) -> int:
    """Forward + backward FLOPs per image of a torchvision ViT, by hand: backward costs twice the
    forward, except the patch embedding, whose input needs no gradient (weights only)."""
    patches = (image_size // patch_size) ** 2
    tokens, width, hidden = patches + 1, embed_dim, round(embed_dim * mlp_ratio)
    embed = 2 * patches * 3 * patch_size**2 * width
    linears = 2 * tokens * width * (3 * width + width + 2 * hidden)  # qkv, out projection, MLP
    attention = 2 * 2 * tokens * tokens * width  # scores and weighted values, all heads together
    head = 2 * width * classes  # the class token only
    forward = embed + depth * (linears + attention) + head
    return forward + 2 * (forward - embed) + embed


def load_train_step_module():
    spec = importlib.util.spec_from_file_location("train_step_benchmark", BENCHMARKS / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flops_per_step_counts_every_matmul_and_attention_at_the_whole_batch():
    """Counted on a slice and scaled to the batch, attention included on the CPU too."""
    train_step = load_train_step_module()
    batch = 3 * train_step.FLOP_COUNT_IMAGES  # scaled from the slice
    setup = make_setup("vit_cpu_small", batch=batch, steps=1, device="cpu")
    flops = train_step.flops_per_step(setup, *setup.batches[0])
    assert flops == batch * vit_training_flops(**MODELS["vit_cpu_small"], classes=10)
    assert all(p.grad is None for p in setup.raw_model.parameters()), "counting leaves no gradients"


def test_train_step_benchmark_reports_a_failing_model_and_exits_non_zero():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "train_step.py"), "--model", "vit_cpu_small",
                           "--precision", "fp16", "--device", "cpu", "--steps", "1", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    (result,) = json.loads(done.stdout)["results"]
    assert result["model"] == "vit_cpu_small" and "fp16 needs a GPU" in result["error"]
    assert json.loads(done.stderr.strip().splitlines()[-1]) == result, "each result is streamed at once"


def test_train_step_benchmark_names_an_unknown_model():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "train_step.py"), "--model", "vit_huge_typo"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--model: unknown vit_huge_typo" in done.stderr


def test_end_to_end_benchmark_reads_epoch_times_and_time_to_target_from_a_run(tmp_path):
    run_dir = train(load_dict(tiny_spec(tmp_path, epochs=3))).run_dir
    out = run_benchmark("end_to_end.py", "--run-dir", str(run_dir), "--target", "0.0")
    assert out["epochs"] == 3 and out["mean_epoch_seconds"] > 0
    assert out["reached_target"]["epoch"] == 1, "any accuracy reaches a target of 0 after the first epoch"


def test_input_pipeline_benchmark_times_every_decode_mode_and_the_fed_training_step():
    out = run_benchmark("input_pipeline.py", "--images", "48", "--batch", "8", "--workers", "0",
                        "--device", "cpu", "--model", "vit_cpu_small")
    assert out["size"] == 64, "the images are made at the model's input size"
    assert set(out["modes"]) == {"loader", "cache", "device"}
    for mode, figures in out["modes"].items():
        assert figures["images_per_sec"] > 0 and figures["fed_train_images_per_sec"] > 0, mode
        assert 0 < figures["fed_vs_synthetic"], mode
    assert out["modes"]["cache"]["build_s"] > 0


def test_input_pipeline_benchmark_times_augmentation_on_the_device_beside_the_loader():
    out = run_benchmark("input_pipeline.py", "--images", "48", "--batch", "8", "--workers", "0",
                        "--device", "cpu", "--decode", "cache", "--augment", "all")
    assert set(out["modes"]) == {"cache+augment_loader", "cache+augment_device"}
    assert all(figures["images_per_sec"] > 0 for figures in out["modes"].values())
