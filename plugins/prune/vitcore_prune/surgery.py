"""Structural pruning of ViT blocks, in place: attention heads and MLP hidden channels removed.

Each model family (torchvision, timm, Hugging Face) is described the same way: per block, the
parameters that carry the heads (and how: the packed q/k/v rows, or one slice per head) and
those that carry the MLP's hidden channels. Pruning then only slices those tensors and fixes the
few attributes a family's forward reads (``num_heads``, ``attn_dim``, the HF config), so
parameter names stay the base model's and a checkpoint, the views and the exporters see a model
of the same kind, only narrower. torchvision's ``nn.MultiheadAttention`` cannot narrow, so a
torchvision block that loses heads gets ``HeadPrunedSelfAttention`` (same parameter names).

Why not torch-pruning: its MultiheadAttention pruner narrows ``embed_dim`` (the residual
stream) and keeps ``num_heads``, so it cannot remove a torchvision head; for timm and HF it
would need the same attribute fixes afterwards, and its dependency graph is a traced forward pass
that every rebuild of a pruned run (evaluate, export, predict) would repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from vitcore.api import SpecError
from vitcore_prune.plan import Plan

QKV, HEADS, CHANNELS = "qkv", "heads", "channels"


@dataclass(frozen=True)
class Slice:
    """A parameter that carries heads or channels along ``dim``, laid out as ``layout``:
    ``qkv`` (3 x heads x head_dim, the packed q/k/v projections), ``heads`` (heads x head_dim)
    or ``channels`` (one row or column per MLP channel)."""

    param: str
    dim: int
    layout: str


@dataclass(frozen=True)
class BlockLayout:
    """One block's prunable geometry and where its parameters are."""

    index: int
    num_heads: int
    head_dim: int
    hidden: int
    head_slices: tuple[Slice, ...]
    #: The output projection's columns of each head / the second MLP layer's column of each
    #: channel: their weight x gradient is the first-order loss change of removing it.
    head_output: Slice
    mlp_slices: tuple[Slice, ...]
    mlp_output: Slice


def slice_indices(layout: str, kept: Sequence[int], num_heads: int, head_dim: int) -> list[int]:
    """Positions along the sliced dimension that the kept heads or channels occupy."""
    if layout == CHANNELS:
        return list(kept)
    per_head = [h * head_dim + d for h in kept for d in range(head_dim)]
    if layout == HEADS:
        return per_head
    return [part * num_heads * head_dim + i for part in range(3) for i in per_head]


def group_values(tensor: torch.Tensor, item: Slice, num_heads: int, head_dim: int) -> torch.Tensor:
    """``tensor`` (shaped like ``item``'s parameter) reshaped to ``(groups, -1)``: one row per head or channel."""
    moved = tensor.movedim(item.dim, 0)
    if item.layout == CHANNELS:
        return moved.reshape(moved.shape[0], -1)
    if item.layout == HEADS:
        return moved.reshape(num_heads, -1)
    return moved.reshape(3, num_heads, head_dim, -1).transpose(0, 1).reshape(num_heads, -1)


class SourceState:
    """Maps a source model's full-size state dict onto the pruned model: what ``model.init_from``
    calls (as the model's ``vitcore_source_state``) before fitting the weights. Tensors already of
    the pruned size pass unchanged, so a pruned run's own checkpoint also fits. Plain data: the
    model deep-copies and pickles with it."""

    def __init__(self, cuts: Sequence[tuple[str, int, int, list[int]]]) -> None:
        self.cuts = [(name, dim, full, list(index)) for name, dim, full, index in cuts]

    def __call__(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(state)
        for name, dim, full, index in self.cuts:
            tensor = out.get(name)
            if tensor is not None and tensor.dim() > dim and tensor.shape[dim] == full:
                out[name] = tensor.index_select(dim, torch.tensor(index, dtype=torch.long))
        return out


# -- the families -------------------------------------------------------------------------------


def _names(model: nn.Module) -> dict[int, str]:
    return {id(m): name for name, m in model.named_modules()}


def _present(model: nn.Module, slices: Sequence[Slice]) -> tuple[Slice, ...]:
    names = dict(model.named_parameters())
    return tuple(s for s in slices if s.param in names)


class Family:
    """How one library's ViT is laid out. ``blocks`` describes it; the rest make it narrower."""

    name = ""

    def blocks(self, model: nn.Module) -> list[BlockLayout]:
        raise NotImplementedError

    def before_heads(self, model: nn.Module, layout: BlockLayout) -> None:
        """Called before a block's head tensors are sliced (torchvision swaps its attention)."""

    def set_heads(self, model: nn.Module, layout: BlockLayout, kept: int) -> None:
        raise NotImplementedError

    def finish(self, model: nn.Module) -> None:
        """After every block is pruned: model-wide records of the sizes (HF's config)."""


class TorchvisionFamily(Family):
    name = "torchvision"

    def _blocks(self, model: nn.Module) -> list[nn.Module]:
        return list(model.encoder.layers)

    def blocks(self, model: nn.Module) -> list[BlockLayout]:
        names = _names(model)
        out = []
        for i, block in enumerate(self._blocks(model)):
            p = names[id(block)]
            attn, mlp = block.self_attention, block.mlp
            heads = attn.num_heads
            head_dim = attn.head_dim
            head = (Slice(f"{p}.self_attention.in_proj_weight", 0, QKV), Slice(f"{p}.self_attention.in_proj_bias", 0, QKV),
                    Slice(f"{p}.self_attention.out_proj.weight", 1, HEADS))
            channels = (Slice(f"{p}.mlp.0.weight", 0, CHANNELS), Slice(f"{p}.mlp.0.bias", 0, CHANNELS),
                        Slice(f"{p}.mlp.3.weight", 1, CHANNELS))
            out.append(BlockLayout(i, heads, head_dim, mlp[0].out_features, _present(model, head), head[2],
                                   _present(model, channels), channels[2]))
        return out

    def before_heads(self, model: nn.Module, layout: BlockLayout) -> None:
        from vitcore_prune.attention import HeadPrunedSelfAttention

        block = self._blocks(model)[layout.index]
        if isinstance(block.self_attention, nn.MultiheadAttention):
            block.self_attention = HeadPrunedSelfAttention.from_multihead(block.self_attention)

    def set_heads(self, model: nn.Module, layout: BlockLayout, kept: int) -> None:
        self._blocks(model)[layout.index].self_attention.num_heads = kept


class TimmFamily(Family):
    name = "timm"

    def blocks(self, model: nn.Module) -> list[BlockLayout]:
        names = _names(model)
        out = []
        for i, block in enumerate(getattr(model, "blocks", [])):
            attn, mlp = getattr(block, "attn", None), getattr(block, "mlp", None)
            if not (isinstance(getattr(attn, "qkv", None), nn.Linear) and hasattr(attn, "attn_dim")):
                raise SpecError(f"model: blocks.{i}.attn ({type(attn).__name__}) is not timm's standard Attention "
                                "with a packed qkv projection (timm >= 1.0.16); vitcore-prune cannot remove its heads")
            if not (isinstance(getattr(mlp, "fc1", None), nn.Linear) and isinstance(getattr(mlp, "fc2", None), nn.Linear)):
                raise SpecError(f"model: blocks.{i}.mlp ({type(mlp).__name__}) is not a two-layer Mlp (fc1, fc2); "
                                "vitcore-prune cannot remove its channels")
            p = names[id(block)]
            head = [Slice(f"{p}.attn.qkv.weight", 0, QKV), Slice(f"{p}.attn.qkv.bias", 0, QKV),
                    Slice(f"{p}.attn.proj.weight", 1, HEADS)]
            if isinstance(attn.norm, nn.LayerNorm):  # scale_norm: a norm over the heads' outputs
                head += [Slice(f"{p}.attn.norm.weight", 0, HEADS), Slice(f"{p}.attn.norm.bias", 0, HEADS)]
            if getattr(attn, "gate", None) is not None:
                head += [Slice(f"{p}.attn.gate.weight", 0, HEADS), Slice(f"{p}.attn.gate.bias", 0, HEADS)]
            channels = [Slice(f"{p}.mlp.fc1.weight", 0, CHANNELS), Slice(f"{p}.mlp.fc1.bias", 0, CHANNELS),
                        Slice(f"{p}.mlp.fc2.weight", 1, CHANNELS)]
            if isinstance(getattr(mlp, "norm", None), nn.LayerNorm):
                channels += [Slice(f"{p}.mlp.norm.weight", 0, CHANNELS), Slice(f"{p}.mlp.norm.bias", 0, CHANNELS)]
            out.append(BlockLayout(i, attn.num_heads, attn.head_dim, mlp.fc1.out_features, _present(model, head),
                                   head[2], _present(model, channels), channels[2]))
        return out

    def set_heads(self, model: nn.Module, layout: BlockLayout, kept: int) -> None:
        attn = model.blocks[layout.index].attn
        attn.num_heads, attn.attn_dim = kept, kept * attn.head_dim


class HuggingFaceFamily(Family):
    name = "hf"

    def _layers(self, model: nn.Module) -> list[nn.Module]:
        hf = model.hf_model
        backbone = getattr(hf, hf.base_model_prefix)
        return list(backbone.layers) if hasattr(backbone, "layers") else list(backbone.encoder.layer)

    def blocks(self, model: nn.Module) -> list[BlockLayout]:
        names = _names(model)
        out = []
        for i, layer in enumerate(self._layers(model)):
            attn, mlp = getattr(layer, "attention", None), getattr(layer, "mlp", None)
            if not all(isinstance(getattr(attn, n, None), nn.Linear) for n in ("q_proj", "k_proj", "v_proj", "o_proj")):
                raise SpecError(f"model: layer {i}'s attention ({type(attn).__name__}) has no q_proj/k_proj/v_proj/"
                                "o_proj (transformers 5's ViT layout); vitcore-prune cannot remove its heads")
            if not (isinstance(getattr(mlp, "fc1", None), nn.Linear) and isinstance(getattr(mlp, "fc2", None), nn.Linear)):
                raise SpecError(f"model: layer {i}'s MLP has no fc1/fc2 (transformers 5's ViT layout); "
                                "vitcore-prune cannot remove its channels")
            p = names[id(layer)]
            head = [Slice(f"{p}.attention.o_proj.weight", 1, HEADS)]
            for proj in ("q_proj", "k_proj", "v_proj"):
                head += [Slice(f"{p}.attention.{proj}.weight", 0, HEADS), Slice(f"{p}.attention.{proj}.bias", 0, HEADS)]
            channels = (Slice(f"{p}.mlp.fc1.weight", 0, CHANNELS), Slice(f"{p}.mlp.fc1.bias", 0, CHANNELS),
                        Slice(f"{p}.mlp.fc2.weight", 1, CHANNELS))
            heads = attn.num_attention_heads
            out.append(BlockLayout(i, heads, attn.head_dim, mlp.fc1.out_features, _present(model, head), head[0],
                                   _present(model, channels), channels[2]))
        return out

    def set_heads(self, model: nn.Module, layout: BlockLayout, kept: int) -> None:
        self._layers(model)[layout.index].attention.num_attention_heads = kept

    def finish(self, model: nn.Module) -> None:
        # The config is what the view reads and what save_pretrained writes: a pruned model saved
        # by the hf exporter loads back in its pruned shape.
        config = model.hf_model.config
        layers = self._layers(model)
        config.num_attention_heads = layers[0].attention.num_attention_heads
        config.head_dim = layers[0].attention.head_dim
        config.intermediate_size = layers[0].mlp.fc1.out_features


def family_of(model: nn.Module) -> Family:
    """The family that knows ``model``, told by its class's module (no library is imported)."""
    module = type(model).__module__
    if module.startswith("torchvision.models."):
        return TorchvisionFamily()
    if module.startswith("timm.models."):
        return TimmFamily()
    if module == "vitcore_vit_hf.classifier":
        return HuggingFaceFamily()
    raise SpecError(f"model.base: vitcore-prune cannot prune a {type(model).__name__} ({module}); it prunes the "
                    "models of torchvision_vit, timm_vit and hf_vit")


def describe(model: nn.Module) -> list[BlockLayout]:
    """Every block's heads, head size, MLP width and the parameters that carry them."""
    return family_of(model).blocks(model)


# -- pruning ------------------------------------------------------------------------------------


def _check(plan: Plan, layouts: list[BlockLayout]) -> None:
    """SpecError naming ``model.heads[i]`` / ``model.mlp[i]`` unless the plan fits these blocks."""
    problems = []
    for field, kept, size_of in (("heads", plan.heads, lambda b: b.num_heads), ("mlp", plan.mlp, lambda b: b.hidden)):
        if kept is None:
            continue
        if len(kept) != len(layouts):
            problems.append(f"model.{field}: {len(kept)} entries for a model of {len(layouts)} blocks; give one per block")
            continue
        for block, indices in zip(layouts, kept):
            size = size_of(block)
            if not indices:
                problems.append(f"model.{field}[{block.index}]: keeps nothing; keep at least one")
            elif indices[-1] >= size:
                problems.append(f"model.{field}[{block.index}]: index {indices[-1]} is out of range, block "
                                f"{block.index} has {size} {'heads' if field == 'heads' else 'MLP channels'}")
        counts = {len(k) for k in kept}
        if field == "heads" and len(counts) > 1:
            problems.append(f"model.heads: every block must keep as many heads (got {sorted(counts)}), so the model "
                            "has one head count")
    if problems:
        raise SpecError("\n".join(problems))


def _replace(model: nn.Module, name: str, tensor: torch.Tensor) -> nn.Module:
    prefix, _, attr = name.rpartition(".")
    owner = model.get_submodule(prefix)
    old = getattr(owner, attr)
    setattr(owner, attr, nn.Parameter(tensor.detach().clone().contiguous(), requires_grad=old.requires_grad))
    return owner


def _fix_sizes(owner: nn.Module) -> None:
    if isinstance(owner, nn.Linear):
        owner.out_features, owner.in_features = owner.weight.shape
    elif isinstance(owner, nn.LayerNorm) and owner.weight is not None:
        owner.normalized_shape = (owner.weight.shape[0],)


def prune(model: nn.Module, plan: Plan) -> SourceState:
    """Remove from ``model``, in place, every head and MLP channel ``plan`` does not keep.

    Returns the mapping of a full-size state dict onto the pruned model (for ``init_from``)."""
    family = family_of(model)
    layouts = family.blocks(model)
    _check(plan, layouts)
    params_of = lambda: dict(model.named_parameters())  # noqa: E731 - re-read: modules are replaced
    cuts: list[tuple[str, int, int, list[int]]] = []
    owners: list[nn.Module] = []
    for layout in layouts:
        heads = None if plan.heads is None else plan.heads[layout.index]
        if heads is not None and len(heads) < layout.num_heads:
            family.before_heads(model, layout)
            params = params_of()
            for item in layout.head_slices:
                index = slice_indices(item.layout, heads, layout.num_heads, layout.head_dim)
                tensor = params[item.param]
                cuts.append((item.param, item.dim, tensor.shape[item.dim], index))
                owners.append(_replace(model, item.param, tensor.index_select(item.dim, torch.tensor(index))))
            family.set_heads(model, layout, len(heads))
        channels = None if plan.mlp is None else plan.mlp[layout.index]
        if channels is not None and len(channels) < layout.hidden:
            params = params_of()
            for item in layout.mlp_slices:
                tensor = params[item.param]
                cuts.append((item.param, item.dim, tensor.shape[item.dim], list(channels)))
                owners.append(_replace(model, item.param, tensor.index_select(item.dim, torch.tensor(channels))))
    for owner in owners:
        _fix_sizes(owner)
    family.finish(model)
    return SourceState(cuts)


def kept_everything(layouts: list[BlockLayout]) -> Plan:
    return Plan([list(range(b.num_heads)) for b in layouts], [list(range(b.hidden)) for b in layouts])


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

