"""The ``vit_view`` of models built by ``hf_vit``, so visualizers can look inside them."""

from __future__ import annotations

from typing import Any

from vitcore.api import ViTView, evaluating


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _mlp(layer: Any) -> tuple[Any, Any]:
    if hasattr(layer, "mlp"):
        return layer.mlp.fc1, layer.mlp.fc2
    return layer.intermediate.dense, layer.output.dense


def hf_view(model: Any) -> ViTView | None:
    # Checked by module name first: asking about a torchvision model must not import transformers.
    if type(model).__module__ != "vitcore_vit_hf.classifier":
        return None
    import torch

    hf = model.hf_model
    config = hf.config
    backbone = getattr(hf, hf.base_model_prefix)
    embeddings = backbone.embeddings
    # transformers 5 keeps blocks in ``layers`` with an ``mlp``; older releases in ``encoder.layer``.
    layers = list(backbone.layers) if hasattr(backbone, "layers") else list(backbone.encoder.layer)
    image_size, patch_size = _pair(config.image_size), _pair(config.patch_size)
    grid = (image_size[0] // patch_size[0]) * (image_size[1] // patch_size[1])
    positions = embeddings.position_embeddings

    def capture_attention(images: torch.Tensor) -> list[torch.Tensor]:
        with evaluating(model):
            return [a.detach() for a in model.attention_maps(images)]

    return ViTView(
        model=model,
        image_size=image_size,
        patch_size=patch_size,
        num_prefix_tokens=positions.shape[1] - grid,
        num_blocks=len(layers),
        num_heads=config.num_attention_heads,
        pooling="token",
        capture_attention=capture_attention,
        position_embedding=lambda: positions.detach()[0],
        patch_embedding_weight=lambda: embeddings.patch_embeddings.projection.weight.detach(),
        mlp_layers=lambda: [(f"layer{i}", *_mlp(layer)) for i, layer in enumerate(layers)],
        head=lambda: hf.classifier,
    )
