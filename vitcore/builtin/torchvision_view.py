"""The ``vit_view`` of torchvision's VisionTransformer, so visualizers can look inside it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from vitcore import hookimpl
from vitcore.components import ViTView, evaluating


@contextmanager
def _explicit_attention(blocks: Any, store: list) -> Iterator[None]:
    """Make each block's MultiheadAttention return per-head weights (it is called with
    need_weights=False in training, which keeps the fused kernel); undone on exit."""
    for block in blocks:
        attention = block.self_attention
        original = attention.forward

        def forward(*args: Any, _original=original, **kwargs: Any):
            kwargs.update(need_weights=True, average_attn_weights=False)
            output, weights = _original(*args, **kwargs)
            store.append(weights.detach())
            return output, weights

        attention.forward = forward  # an instance attribute shadows the class's method
    try:
        yield
    finally:
        for block in blocks:
            block.self_attention.__dict__.pop("forward", None)


def torchvision_view(model: Any) -> ViTView | None:
    import torch
    from torchvision.models.vision_transformer import VisionTransformer

    if not isinstance(model, VisionTransformer):
        return None
    blocks = list(model.encoder.layers)

    def capture_attention(images: torch.Tensor) -> list[torch.Tensor]:
        store: list[torch.Tensor] = []
        with evaluating(model), _explicit_attention(blocks, store):
            model(images)
        return store

    return ViTView(
        model=model,
        image_size=(model.image_size, model.image_size),
        patch_size=(model.patch_size, model.patch_size),
        num_prefix_tokens=1,
        num_blocks=len(blocks),
        num_heads=blocks[0].self_attention.num_heads,
        pooling="token",
        capture_attention=capture_attention,
        position_embedding=lambda: model.encoder.pos_embedding.detach()[0],
        patch_embedding_weight=lambda: model.conv_proj.weight.detach(),
        mlp_layers=lambda: [(f"block{i}", b.mlp[0], b.mlp[3]) for i, b in enumerate(blocks)],
        head=lambda: model.heads.head,
    )


@hookimpl
def vit_view(model: Any) -> ViTView | None:
    return torchvision_view(model)
