"""The plugin's visualizers, in the order ``vitcore visualize`` runs them."""

from __future__ import annotations

from vitcore_viz_attention.attention_viz import (
    AttentionMaps,
    AttentionRollout,
    AttentionStats,
)
from vitcore_viz_attention.base import ViTVisualizer
from vitcore_viz_attention.weights_viz import (
    FCLayers,
    PatchEmbedding,
    PositionEmbedding,
)

VISUALIZERS: tuple[type[ViTVisualizer], ...] = (
    AttentionMaps, AttentionRollout, AttentionStats, PositionEmbedding, PatchEmbedding, FCLayers,
)
NAMES: tuple[str, ...] = tuple(v.name for v in VISUALIZERS)
