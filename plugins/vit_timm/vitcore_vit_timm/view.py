"""The ``vit_view`` of timm Vision Transformers, so visualizers can look inside them."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from vitcore.api import ViTView, evaluating


@contextmanager
def _explicit_attention(blocks: list[Any], store: list) -> Iterator[None]:
    """timm reads its fused-attention switch per module: turn it off on each block for the call
    (set_fused_attn would change nothing now) and catch the softmax output entering attn_drop."""
    saved = [block.attn.fused_attn for block in blocks]
    hooks = []
    for block in blocks:
        block.attn.fused_attn = False
        hooks.append(block.attn.attn_drop.register_forward_hook(
            lambda module, inputs, output: store.append(inputs[0].detach())))
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
        for block, fused in zip(blocks, saved):
            block.attn.fused_attn = fused


def _classifier(model: Any) -> Any:
    head = model.get_classifier()
    return head[0] if isinstance(head, tuple) else head  # distilled DeiT: (head, head_dist)


def timm_view(model: Any) -> ViTView | None:
    # Checked by module name first: asking about another library's model must not import timm.
    if not type(model).__module__.startswith("timm.models."):
        return None
    blocks = list(getattr(model, "blocks", []))
    if not blocks or not all(hasattr(b, "attn") and hasattr(b.attn, "fused_attn") for b in blocks):
        return None  # a timm model without standard attention blocks: no view
    import torch

    def capture_attention(images: torch.Tensor) -> list[torch.Tensor]:
        store: list[torch.Tensor] = []
        with evaluating(model), _explicit_attention(blocks, store):
            model(images)
        return store

    patch_embed = model.patch_embed
    grid, patch = tuple(patch_embed.grid_size), tuple(patch_embed.patch_size)
    return ViTView(
        model=model,
        image_size=(grid[0] * patch[0], grid[1] * patch[1]),
        patch_size=patch,
        num_prefix_tokens=model.num_prefix_tokens,
        num_blocks=len(blocks),
        num_heads=blocks[0].attn.num_heads,
        pooling="token" if model.global_pool == "token" else "avg",
        capture_attention=capture_attention,
        position_embedding=lambda: None if model.pos_embed is None else model.pos_embed.detach()[0],
        patch_embedding_weight=lambda: patch_embed.proj.weight.detach(),
        mlp_layers=lambda: [(f"block{i}", b.mlp.fc1, b.mlp.fc2) for i, b in enumerate(blocks)],
        head=lambda: _classifier(model),
    )
