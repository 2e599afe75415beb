"""The ``nn.Module`` the engine trains: images in, logits out, around a transformers model.

Imports torch at module level, so only ``HFViT.build`` and the exporter import it.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel


class HFImageClassifier(nn.Module):
    """Maps ``(B, 3, H, W)`` normalised images to ``(B, num_classes)`` logits.

    The transformers model stays reachable as ``hf_model`` so exporters can ``save_pretrained`` it.
    """

    def __init__(self, hf_model: PreTrainedModel) -> None:
        super().__init__()
        self.hf_model = hf_model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.hf_model(pixel_values=images).logits

    def attention_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """One ``(B, heads, T, T)`` softmax attention tensor per layer (T includes the class token).

        SDPA never materialises the weights, so this call alone runs the eager kernel; the
        training implementation is restored afterwards, even if the forward pass fails.
        """
        previous = self.hf_model.config._attn_implementation
        self.hf_model.set_attn_implementation("eager")
        try:
            outputs = self.hf_model(pixel_values=images, output_attentions=True)
        finally:
            self.hf_model.set_attn_implementation(previous)
        return list(outputs.attentions)
