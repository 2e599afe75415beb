"""The ``torchvision_vit`` model builder.

Local weights are fitted to the model (new head, resized position grid) by ``vitcore.weights``.
torch and torchvision are imported inside functions: ``vitcore plugins list`` imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import Field, model_validator

from vitcore import hookimpl
from vitcore.components import ModelBuilder, ModelContext, Options, Preprocessing, SpecPath

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
    weights: SpecPath | None = Field(
        None, description="Local torchvision checkpoint (.pth/.pt/.safetensors), relative to the spec file's folder."
    )

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
            from vitcore.weights import load_weights_file

            path = Path(o.weights).expanduser()
            load_weights_file(model, path if path.is_absolute() else ctx.spec_dir / path, ctx.num_classes)
        return model

    def preprocessing(self) -> Preprocessing:
        if self.options.arch == "custom":
            return Preprocessing(self.options.image_size)
        return Preprocessing(self.options.image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def no_weight_decay(self, model: "torch.nn.Module") -> set[str]:
        return {n for n, _ in model.named_parameters() if n in ("class_token", "encoder.pos_embedding")}


@hookimpl
def register_models(register) -> None:
    register(TorchvisionViT)
