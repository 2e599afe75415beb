"""Self-attention whose inner width (heads x head size) may be narrower than the token width.

torchvision's ``nn.MultiheadAttention`` ties its inner width to ``embed_dim``, the width of the
residual stream, so it cannot lose a head; a pruned torchvision ViT gets this module instead. It
keeps MultiheadAttention's parameter names (``in_proj_weight``, ``in_proj_bias``, ``out_proj``)
and its call (``(query, key, value, need_weights=...) -> (output, weights)``), so torchvision's
EncoderBlock, vitcore's torchvision view (which asks for per-head weights) and checkpoints work
unchanged; without weights it runs ``scaled_dot_product_attention`` (fused, ONNX opset 14+).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HeadPrunedSelfAttention(nn.Module):
    """Batch-first self-attention of ``num_heads`` heads of ``head_dim`` over ``embed_dim`` tokens."""

    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim, self.dropout = embed_dim, num_heads, head_dim, dropout
        self.batch_first = True
        inner = num_heads * head_dim
        self.in_proj_weight = nn.Parameter(torch.empty(3 * inner, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * inner)) if bias else None
        self.out_proj = nn.Linear(inner, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)

    @classmethod
    def from_multihead(cls, mha: nn.MultiheadAttention) -> "HeadPrunedSelfAttention":
        """The same attention (same weights, same outputs) as a batch-first self-attention ``mha``."""
        if not mha.batch_first or not mha._qkv_same_embed_dim or mha.bias_k is not None:
            raise ValueError("only batch-first self-attention with one packed input projection can be pruned")
        module = cls(mha.embed_dim, mha.num_heads, mha.head_dim, mha.dropout, bias=mha.in_proj_bias is not None)
        with torch.no_grad():
            module.in_proj_weight.copy_(mha.in_proj_weight)
            module.out_proj.weight.copy_(mha.out_proj.weight)
            if module.in_proj_bias is not None:
                module.in_proj_bias.copy_(mha.in_proj_bias)
                module.out_proj.bias.copy_(mha.out_proj.bias)
        return module.to(mha.in_proj_weight.device, mha.in_proj_weight.dtype).train(mha.training)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        # key and value are the query in a ViT (torchvision passes x, x, x); masks are not used there.
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            raise NotImplementedError("HeadPrunedSelfAttention is self-attention without masks")
        batch, tokens, _ = query.shape
        qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:  # explicit softmax, as MultiheadAttention does when weights are asked for
            attn = (q * self.head_dim ** -0.5) @ k.transpose(-2, -1)
            weights = attn.softmax(dim=-1)
            out = F.dropout(weights, p, self.training) @ v
            if average_attn_weights:
                weights = weights.mean(dim=1)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        out = out.transpose(1, 2).reshape(batch, tokens, self.num_heads * self.head_dim)
        return self.out_proj(out), weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, head_dim={self.head_dim}"
