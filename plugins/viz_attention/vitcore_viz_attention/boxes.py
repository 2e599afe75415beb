"""Does attention rollout look at the object? Rollout mass inside the ``shapes`` data set's boxes.

The ratio of the mass inside an image's bounding box to the box's share of the image is 1 for a
map that ignores the box and grows as the map concentrates on it. The benchmark and the tests
compare it between a trained model and the same architecture freshly initialised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from vitcore.api import Preprocessing, VitcoreError
from vitcore_viz_attention.metrics import mass_in_box_ratio
from vitcore_viz_attention.rollout import HeadFusion, attention_rollout


def box_in_model_pixels(box: Sequence[float], source_size: int, pre: Preprocessing) -> list[float]:
    """An ``xyxy`` box of a square ``source_size`` image moved as evaluation moves the pixels:
    resize to ``image_size / crop_pct``, then centre-crop ``image_size``."""
    resized = round(pre.image_size / pre.crop_pct)
    scale, offset = resized / source_size, (resized - pre.image_size) / 2
    return [min(max(v * scale - offset, 0.0), float(pre.image_size)) for v in box]


def validation_boxes(data: dict[str, Any], pre: Preprocessing, limit: int | None = None,
                     seed: int = 0) -> list[tuple[torch.Tensor, list[float]]]:
    """Validation images of the spec entry ``data`` (a ``shapes`` data set), prepared as in
    evaluation, each with its bounding box in the model's pixels."""
    from vitcore.api import eval_transform, load_rgb, load_splits

    splits = load_splits({"data": data}, seed=seed)
    if "boxes_file" not in splits.info:
        raise VitcoreError(f"data set {data.get('type')!r} records no bounding boxes (boxes_file)")
    document = json.loads(Path(splits.info["boxes_file"]).read_text())
    root = Path(splits.info["root"])
    transform = eval_transform(pre)
    items = []
    for path, _label in splits.val.samples[:limit]:
        box = document["boxes"][Path(path).relative_to(root).as_posix()]
        items.append((transform(load_rgb(path)), box_in_model_pixels(box, document["image_size"], pre)))
    return items


def fresh_model(model: dict[str, Any], classes: list[str], seed: int = 0) -> torch.nn.Module:
    """The spec entry ``model``'s architecture with new random weights, as training starts from."""
    from vitcore.api import ModelContext, resolve_component

    builder = resolve_component({k: v for k, v in model.items() if k != "init_from"}, "models", "model").instantiate()
    torch.manual_seed(seed)
    return builder.build(ModelContext(num_classes=len(classes), class_names=classes, load_pretrained=False)).eval()


def rollout_box_ratios(model: torch.nn.Module, pre: Preprocessing,
                       items: Sequence[tuple[torch.Tensor, Sequence[float]]], fusion: HeadFusion = "mean",
                       discard_ratio: float = 0.0, batch_size: int = 64) -> list[float]:
    """Per image: rollout mass inside its box / the box's share of the image."""
    from vitcore.api import normalize, vit_view

    view = vit_view(model)
    if view is None:
        raise VitcoreError(f"no installed plugin describes a {type(model).__name__} as a ViT (vit_view hook)")
    device = next(model.parameters()).device
    ratios = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        maps = view.capture_attention(normalize(torch.stack([image for image, _ in chunk]), pre, device))
        relevance = attention_rollout([m.float().cpu() for m in maps], view.num_prefix_tokens, view.pooling,
                                      fusion, discard_ratio)
        ratios += [mass_in_box_ratio(r.view(view.grid), view.patch_size, box)
                   for r, (_, box) in zip(relevance, chunk)]
    return ratios
