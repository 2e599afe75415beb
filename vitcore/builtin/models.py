"""The ``torchvision_vit`` model builder, and the helpers that adapt pretrained ViT weights.

The helpers (reading a state-dict file, replacing the classifier head, resizing position
embeddings) are generic over key names so other ViT plugins can reuse them. torch and
torchvision are imported inside functions: ``vitcore plugins list`` imports this module.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, NamedTuple

from pydantic import Field, model_validator

from vitcore import hookimpl
from vitcore.components import ModelBuilder, ModelContext, Options, Preprocessing
from vitcore.errors import VitcoreError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Architecture(NamedTuple):
    patch_size: int
    depth: int
    embed_dim: int
    num_heads: int
    mlp_ratio: float


#: torchvision's named ViTs (the sizes of ``torchvision.models.vit_*``).
ARCHS: dict[str, Architecture] = {
    "vit_b_16": Architecture(16, 12, 768, 12, 4.0),
    "vit_b_32": Architecture(32, 12, 768, 12, 4.0),
    "vit_l_16": Architecture(16, 24, 1024, 16, 4.0),
    "vit_l_32": Architecture(32, 24, 1024, 16, 4.0),
    "vit_h_14": Architecture(14, 32, 1280, 16, 4.0),
}


class ViTOptions(Options):
    arch: Literal["custom", "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"] = Field(
        "custom", description="A torchvision architecture, or custom to set the sizes below."
    )
    image_size: int = Field(224, ge=1, description="Input side in pixels; also overrides a named arch's.")
    patch_size: int = Field(16, ge=1, description="Custom arch only.")
    depth: int = Field(12, ge=1, description="Number of encoder blocks; custom arch only.")
    embed_dim: int = Field(768, ge=1, description="Token width; custom arch only.")
    num_heads: int = Field(12, ge=1, description="Custom arch only.")
    mlp_ratio: float = Field(4.0, gt=0, description="MLP width / embed_dim; custom arch only.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after attention and MLP layers.")
    attention_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on attention weights.")
    weights: str | None = Field(None, description="Local torchvision checkpoint (.pth/.pt/.safetensors).")

    @model_validator(mode="after")
    def _consistent(self) -> "ViTOptions":
        if self.arch != "custom":
            # Compare with the defaults (not "explicitly set") so a dumped-and-reloaded spec stays valid.
            fields = type(self).model_fields
            changed = [f for f in Architecture._fields if getattr(self, f) != fields[f].default]
            if changed:
                raise ValueError(
                    f"{changed[0]}: arch {self.arch!r} fixes {', '.join(Architecture._fields)}; "
                    f"set arch: custom to choose them"
                )
        a = self.architecture()
        if self.image_size % a.patch_size:
            raise ValueError(f"image_size: {self.image_size} is not divisible by patch_size {a.patch_size}")
        if a.embed_dim % a.num_heads:
            raise ValueError(f"embed_dim: {a.embed_dim} is not divisible by num_heads {a.num_heads}")
        return self

    def architecture(self) -> Architecture:
        if self.arch == "custom":
            return Architecture(self.patch_size, self.depth, self.embed_dim, self.num_heads, self.mlp_ratio)
        return ARCHS[self.arch]


class TorchvisionViT(ModelBuilder):
    """torchvision VisionTransformer: a named size or a custom one, optionally from local weights."""

    name = "torchvision_vit"
    Options = ViTOptions
    options: ViTOptions

    def build(self, ctx: ModelContext) -> "torch.nn.Module":
        from torchvision.models import VisionTransformer

        o = self.options
        a = o.architecture()
        model = VisionTransformer(
            image_size=o.image_size,
            patch_size=a.patch_size,
            num_layers=a.depth,
            num_heads=a.num_heads,
            hidden_dim=a.embed_dim,
            mlp_dim=round(a.embed_dim * a.mlp_ratio),
            dropout=o.dropout,
            attention_dropout=o.attention_dropout,
            num_classes=ctx.num_classes,
        )
        if o.weights and ctx.load_pretrained:
            path = Path(o.weights).expanduser()
            load_pretrained(model, path if path.is_absolute() else ctx.spec_dir / path)
        return model

    def preprocessing(self) -> Preprocessing:
        if self.options.arch == "custom":
            return Preprocessing(self.options.image_size)
        return Preprocessing(self.options.image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def no_weight_decay(self, model: "torch.nn.Module") -> set[str]:
        return {n for n, _ in model.named_parameters() if n in ("class_token", "encoder.pos_embedding")}


# --------------------------------------------------------------------------------------------
# Pretrained weights
# --------------------------------------------------------------------------------------------

#: Prefixes wrappers add to every key (DistributedDataParallel, torch.compile).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def load_state_dict_file(path: Path) -> dict[str, "torch.Tensor"]:
    """Tensors of a ``.pth``/``.pt`` state dict (possibly under ``state_dict``/``model``) or ``.safetensors``."""
    import torch

    if not path.is_file():
        raise VitcoreError(
            f"weights file {path} not found. vitcore never downloads weights: copy a checkpoint "
            "(.pth, .pt or .safetensors state dict, e.g. the file torchvision.models.ViT_B_16_Weights "
            "downloads into ~/.cache/torch/hub/checkpoints) onto this machine and set model.weights "
            "to its path"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or pickled objects weights_only refuses
        raise VitcoreError(f"weights file {path}: cannot read it as a state dict ({exc})") from exc
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VitcoreError(f"weights file {path}: expected a state dict of tensors, got {type(state).__name__}")
    state = dict(state)
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def replace_head(
    state: dict[str, "torch.Tensor"], target: Mapping[str, "torch.Tensor"], prefix: str
) -> list[str]:
    """Take the model's fresh head tensors (keys under ``prefix``) where the class count differs.

    Works in place and returns the replaced keys. Only the first (class) dimension may differ;
    any other mismatch is left for ``check_state_dict`` to report.
    """
    replaced = []
    for key, fresh in target.items():
        old = state.get(key)
        if key.startswith(prefix) and old is not None and old.shape != fresh.shape \
                and old.shape[1:] == fresh.shape[1:]:
            state[key] = fresh.clone()
            replaced.append(key)
    return replaced


def resize_pos_embed(pos_embed: "torch.Tensor", grid: int, num_prefix_tokens: int = 1) -> "torch.Tensor":
    """Resize ``(1, prefix + g*g, D)`` position embeddings to a ``grid`` x ``grid`` patch grid.

    The prefix (class-token) embeddings are kept; the patch grid is interpolated bicubically,
    so weights trained at one image size start well at another.
    """
    import torch
    import torch.nn.functional as F

    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    old = math.isqrt(patches.shape[1])
    if old * old != patches.shape[1]:
        raise VitcoreError(f"position embeddings of {patches.shape[1]} patches do not form a square grid")
    if old == grid:
        return pos_embed
    dim = patches.shape[-1]
    image = patches.reshape(1, old, old, dim).permute(0, 3, 1, 2).float()
    image = F.interpolate(image, size=(grid, grid), mode="bicubic", align_corners=False, antialias=True)
    patches = image.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(pos_embed.dtype)
    return torch.cat([prefix, patches], dim=1)


def _some(keys: list[str], n: int = 5) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_state_dict(state: Mapping[str, "torch.Tensor"], target: Mapping[str, "torch.Tensor"], source: str) -> None:
    """Raise a VitcoreError listing a few missing, unexpected and mis-shaped keys, if any."""
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in target.items() if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{label}: {_some(keys)}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("shape mismatches (checkpoint vs model)", mismatched))
        if keys
    ]
    if problems:
        raise VitcoreError(
            f"weights file {source} does not fit this model; {'; '.join(problems)}. "
            "Check that arch and the size options match the checkpoint."
        )


def load_pretrained(
    model: "torch.nn.Module",
    path: Path,
    head_prefix: str = "heads.head.",
    pos_embed_key: str = "encoder.pos_embedding",
    num_prefix_tokens: int = 1,
) -> None:
    """Load a checkpoint into ``model``, adapting the head (class count) and position grid (image size)."""
    state = load_state_dict_file(path)
    target = model.state_dict()
    replace_head(state, target, head_prefix)
    old, new = state.get(pos_embed_key), target.get(pos_embed_key)
    if old is not None and new is not None and old.shape != new.shape and old.shape[-1] == new.shape[-1]:
        grid = math.isqrt(new.shape[1] - num_prefix_tokens)
        state[pos_embed_key] = resize_pos_embed(old, grid, num_prefix_tokens)
    check_state_dict(state, target, str(path))
    model.load_state_dict(state)


@hookimpl
def register_models(register) -> None:
    register(TorchvisionViT)
