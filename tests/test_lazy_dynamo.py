"""The CLI imports torchvision without torch._dynamo, and torchvision is what a normal import leaves
once dynamo is loaded (vitcore/lazy_dynamo.py). Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import hashlib, json, sys
if sys.argv[1] == "lazy":
    import vitcore.cli  # installs the finder, as every vitcore command does
import torch
early = sys.argv[2] == "dynamo-first"
if early:
    import torch._dynamo
import torchvision
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from vitcore.components import Preprocessing
from vitcore.engine.transforms import eval_transform

image = Image.frombytes("RGB", (40, 30), bytes(range(256)) * 14 + bytes(range(240)))
pixels = eval_transform(Preprocessing(24, interpolation="bicubic"))(image)
before = "torch._dynamo" in sys.modules
import torch._dynamo
roi_align = sys.modules["torchvision.ops.roi_align"]
from torch._dynamo.utils import is_compile_supported

flip = torch.compile(lambda x: v2.functional.horizontal_flip(tv_tensors.Image(x)) * 2, backend="eager")
x = torch.arange(12.0).reshape(1, 3, 2, 2)
print(json.dumps({
    "dynamo_before": before,
    "pixels": hashlib.sha256(pixels.numpy().tobytes()).hexdigest(),
    "wrap_disabled": bool(getattr(tv_tensors.wrap, "_torchdynamo_disable", False)),
    "roi_check_is_real": roi_align.is_compile_supported is is_compile_supported,
    "compiled_flip": torch.equal(flip(x), torch.flip(x, dims=[-1]) * 2),
    "roi_align": torchvision.ops.roi_align(x, torch.tensor([[0, 0, 0, 1, 1.0]]), 1).flatten().tolist(),
}))
"""


def probe(mode: str, order: str = "torchvision-first") -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, mode, order], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_torchvision_loads_without_dynamo_and_matches_a_normal_import_once_dynamo_loads():
    lazy, normal = probe("lazy"), probe("normal")
    assert lazy["dynamo_before"] is False, "torchvision and its v2 transforms imported without torch._dynamo"
    assert normal["dynamo_before"] is True, "without the finder torchvision imports dynamo (else drop the finder)"
    assert lazy["wrap_disabled"] is normal["wrap_disabled"] is True, "tv_tensors.wrap is dynamo-disabled again"
    assert lazy["roi_check_is_real"] and normal["roi_check_is_real"]
    assert lazy["compiled_flip"] and normal["compiled_flip"]
    assert lazy["pixels"] == normal["pixels"] and lazy["roi_align"] == normal["roi_align"]


def test_nothing_is_stood_in_when_dynamo_is_already_loaded():
    result = probe("lazy", "dynamo-first")
    assert result["dynamo_before"] is True and result["wrap_disabled"] and result["roi_check_is_real"]
    assert result["compiled_flip"]
