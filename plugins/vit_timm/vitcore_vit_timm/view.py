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
    """The view of a timm ViT whose blocks attend over tokens; None for other models.

    XCiT is left without one on purpose: its blocks attend across channels (cross-covariance
    attention), so there are no token-to-token maps to show, and only its two class-attention
    blocks look at tokens (the class token's row). NaFlexViT has no ``patch_embed``: its
    ``embeds`` patchify with a linear layer and resample a position grid to the image's.
    """
    # Checked by module name first: asking about another library's model must not import timm.
    if not type(model).__module__.startswith("timm.models."):
        return None
    blocks = list(getattr(model, "blocks", []))
    if not blocks or not all(hasattr(b, "attn") and hasattr(b.attn, "fused_attn") for b in blocks):
        return None  # a timm model without standard attention blocks: no view
    if type(model).__module__ == "timm.models.xcit":
        return None
    geometry = _geometry(model)
    if geometry is None:
        return None
    import torch

    image_size, patch, patch_weight, position = geometry

    def capture_attention(images: torch.Tensor) -> list[torch.Tensor]:
        store: list[torch.Tensor] = []
        with evaluating(model), _explicit_attention(blocks, store):
            model(images)
        return store

    return ViTView(
        model=model,
        image_size=image_size,
        patch_size=patch,
        num_prefix_tokens=model.num_prefix_tokens,
        num_blocks=len(blocks),
        num_heads=blocks[0].attn.num_heads,
        pooling="token" if model.global_pool == "token" else "avg",
        capture_attention=capture_attention,
        position_embedding=position,
        patch_embedding_weight=patch_weight,
        mlp_layers=lambda: [(f"block{i}", b.mlp.fc1, b.mlp.fc2) for i, b in enumerate(blocks)],
        head=lambda: _classifier(model),
    )


def _geometry(model: Any) -> tuple[tuple[int, int], tuple[int, int], Any, Any] | None:
    """(image size, patch size, patch-projection weight getter, position-embedding getter)."""
    patch_embed = getattr(model, "patch_embed", None)
    if patch_embed is not None and hasattr(patch_embed, "grid_size"):
        grid, patch = tuple(patch_embed.grid_size), tuple(patch_embed.patch_size)
        return ((grid[0] * patch[0], grid[1] * patch[1]), patch, lambda: patch_embed.proj.weight.detach(),
                lambda: _absolute_positions(model))
    embeds = getattr(model, "embeds", None)
    if embeds is None or not hasattr(embeds, "patch_size"):
        return None
    return _naflex_geometry(model, embeds)


def _absolute_positions(model: Any) -> Any:
    """The learned absolute position table, or None (BEiT and the relpos ViTs have relative ones only)."""
    table = getattr(model, "pos_embed", None)
    return None if table is None else table.detach()[0]


def _naflex_geometry(model: Any, embeds: Any) -> tuple[tuple[int, int], tuple[int, int], Any, Any]:
    """NaFlexViT on whole images: the size it was built for (``vitcore_image_size``, set by
    ``timm_vit``: its grid of learned positions need not match the image), its flattened patches
    projected by a linear layer."""
    import torch

    patch = tuple(embeds.patch_size)
    size = (getattr(model, "vitcore_image_size", None) or embeds.default_img_size
            or tuple(model.pretrained_cfg["input_size"][-2:]))
    image_size = (int(size[0]), int(size[1]))
    grid = (image_size[0] // patch[0], image_size[1] // patch[1])

    def patch_weight() -> torch.Tensor:
        weight = embeds.proj.weight.detach()
        if weight.dim() == 4:
            return weight
        if getattr(embeds, "channels_last", True):  # flat (row, column, channel), channel fastest
            return weight.view(weight.shape[0], patch[0], patch[1], -1).permute(0, 3, 1, 2)
        return weight.view(weight.shape[0], -1, patch[0], patch[1])

    def position() -> torch.Tensor | None:
        if getattr(embeds, "pos_embed", None) is None or embeds.pos_embed_type != "learned":
            return None
        table = torch.zeros(1, grid[0] * grid[1], embeds.pos_embed.shape[-1], dtype=embeds.pos_embed.dtype)
        with torch.no_grad():
            embeds._apply_learned_pos_embed(table, list(grid))  # the resampling the model's forward does
        return table[0]

    return image_size, patch, patch_weight, position
