"""Every model family trains through fused attention (torch's scaled_dot_product_attention).

On CUDA that op dispatches to FlashAttention / memory-efficient kernels; a model that computed
softmax(QK^T)V by hand in training would silently lose most of the GPU's speed. Checked on the
CPU by the operators the training forward and backward actually run.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from vitcore.components import ModelContext
from vitcore.spec import resolve_component

TINY = {
    "torchvision_vit": {"image_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2},
    "timm_vit": {"name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32,
                 "num_heads": 2},
    "hf_vit": {"image_size": 32, "patch_size": 8, "num_hidden_layers": 2, "hidden_size": 32,
               "num_attention_heads": 2, "intermediate_size": 64},
}
PLUGIN = {"torchvision_vit": "vitcore", "timm_vit": "vitcore_vit_timm", "hf_vit": "vitcore_vit_hf"}


class OperatorLog(TorchDispatchMode):
    """Records the name of every aten operator that runs."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.name())
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("model_type", sorted(TINY))
def test_training_step_uses_fused_attention_in_every_block(model_type):
    if importlib.util.find_spec(PLUGIN[model_type]) is None:
        pytest.skip(f"{PLUGIN[model_type]} is not installed")
    builder = resolve_component({"type": model_type, **TINY[model_type]}, "models", "model").instantiate()
    model = builder.build(ModelContext(num_classes=3, class_names=["a", "b", "c"])).train()
    images = torch.randn(2, 3, 32, 32)
    log = OperatorLog()
    with log:
        loss = torch.nn.functional.cross_entropy(model(images), torch.tensor([0, 1]))
        loss.backward()
    fused = [n for n in log.names if "scaled_dot_product" in n]
    forward = [n for n in fused if "backward" not in n]
    backward = [n for n in fused if "backward" in n]
    assert len(forward) == 2, f"{model_type}: expected one fused attention per block, ran {sorted(set(log.names))}"
    assert len(backward) == 2, f"{model_type}: the backward pass must be fused too, got {fused}"
    assert not any(n.startswith("aten::_softmax") for n in log.names), "no hand-written attention softmax"
