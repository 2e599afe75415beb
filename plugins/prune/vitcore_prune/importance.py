"""How much each head and MLP channel matters, to decide which ones a block keeps.

``taylor`` (the default) is the first-order Taylor estimate of the loss change when a head or
channel is removed (Molchanov et al., CVPR 2019): removing it zeroes its contribution to the
block's output projection, so the estimate is ``sum(weight * grad)`` over that projection's
columns for it (for a head this equals the gradient of a mask on the head, Michel et al., 2019).
It is squared per batch and summed over a few training batches. ``magnitude`` needs no data: the
L2 norm of every weight that carries the head or channel.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from vitcore_prune.surgery import BlockLayout, group_values

CRITERIA = ("taylor", "magnitude")


def magnitude(model: nn.Module, layouts: list[BlockLayout]) -> tuple[list[list[float]], list[list[float]]]:
    params = dict(model.named_parameters())
    heads, channels = [], []
    with torch.no_grad():
        for block in layouts:
            h = sum(group_values(params[s.param].float(), s, block.num_heads, block.head_dim).pow(2).sum(1)
                    for s in block.head_slices)
            c = sum(group_values(params[s.param].float(), s, block.num_heads, block.head_dim).pow(2).sum(1)
                    for s in block.mlp_slices)
            heads.append(h.sqrt().tolist())
            channels.append(c.sqrt().tolist())
    return heads, channels


def taylor(model: nn.Module, layouts: list[BlockLayout],
           batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[list[list[float]], list[list[float]]]:
    """``batches``: normalised images and class labels. The model is run in eval mode (no
    dropout) with gradients for the output projections only; its weights are not changed."""
    params = dict(model.named_parameters())
    outputs = [(b.head_output, b) for b in layouts] + [(b.mlp_output, b) for b in layouts]
    tensors = [params[s.param] for s, _ in outputs]
    heads = [torch.zeros(b.num_heads, dtype=torch.float64) for b in layouts]
    channels = [torch.zeros(b.hidden, dtype=torch.float64) for b in layouts]
    was_training, saved = model.training, [t.requires_grad for t in tensors]
    model.eval()
    count = 0
    try:
        for t in tensors:
            t.requires_grad_(True)
        for images, labels in batches:
            loss = F.cross_entropy(model(images).float(), labels)
            grads = torch.autograd.grad(loss, tensors)
            for n, ((item, block), weight, grad) in enumerate(zip(outputs, tensors, grads)):
                score = group_values((weight.detach() * grad).double(), item, block.num_heads, block.head_dim).sum(1)
                target = heads[block.index] if n < len(layouts) else channels[block.index]
                target += score.pow(2)
            count += 1
    finally:
        for t, flag in zip(tensors, saved):
            t.requires_grad_(flag)
        model.train(was_training)
    if count == 0:
        raise ValueError("no training batches to measure importance on")
    return [h.tolist() for h in heads], [c.tolist() for c in channels]
