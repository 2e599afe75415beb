"""The ``hf_vit`` model builder: a transformers ViT, from a config or from pretrained weights.

Only pydantic and vitcore are imported here: ``vitcore plugins list`` imports this module, and
torch/transformers load when a model is actually built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from vitcore.api import ModelBuilder, ModelContext, Options, Preprocessing, SpecPathOrName
from vitcore_vit_hf.processor import preprocessing_from_config
from vitcore_vit_hf.source import read_json, resolve_pretrained

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

#: Sizes of a model built from a config when an option is left unset (ViT-Base/16 at 224).
SCRATCH_SIZES: dict[str, int] = {
    "image_size": 224,
    "patch_size": 16,
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "num_attention_heads": 12,
}
#: Options that shape the weights: a pretrained checkpoint fixes them.
STRUCTURE_FIELDS = ("patch_size", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
#: Options a pretrained checkpoint's config may take over.
TUNABLE_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob")


class HFViTOptions(Options):
    pretrained: SpecPathOrName | None = Field(
        None, min_length=1,
        description="A save_pretrained folder (relative to the spec), or a Hugging Face hub id: read from the "
                    "HF cache (HF_HUB_CACHE / HF_HOME), else downloaded into it (HF_HUB_OFFLINE forbids that). "
                    "None: random init.",
    )
    architecture: Literal["ViTForImageClassification", "AutoModelForImageClassification"] = Field(
        "ViTForImageClassification",
        description="Model class. AutoModelForImageClassification loads any ViT-family checkpoint "
                    "(DeiT, BEiT, DINOv2, ...) as its config names it.",
    )
    image_size: int | None = Field(
        None, ge=1,
        description="Input side in pixels. Default: the checkpoint's, else 224. A pretrained model's "
                    "position embeddings are resized (bicubic) to the new patch grid.",
    )
    patch_size: int | None = Field(None, ge=1, description="Default: the checkpoint's, else 16; fixed by a checkpoint.")
    num_hidden_layers: int | None = Field(None, ge=1, description="Encoder blocks. Default: the checkpoint's, else 12.")
    hidden_size: int | None = Field(None, ge=1, description="Token width. Default: the checkpoint's, else 768.")
    num_attention_heads: int | None = Field(None, ge=1, description="Default: the checkpoint's, else 12.")
    intermediate_size: int | None = Field(
        None, ge=1, description="MLP width. Default: the checkpoint's, else 4 x hidden_size."
    )
    hidden_dropout_prob: float | None = Field(
        None, ge=0, lt=1, description="Dropout on embeddings and block outputs. Default: the checkpoint's, else 0."
    )
    attention_probs_dropout_prob: float | None = Field(
        None, ge=0, lt=1, description="Dropout on attention weights. Default: the checkpoint's, else 0."
    )
    attn_implementation: Literal["sdpa", "eager"] = Field(
        "sdpa", description="Attention kernel for training; attention_maps() switches to eager only while it runs."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "HFViTOptions":
        sizes = self.set_sizes() if self.pretrained else self.scratch_sizes()
        if "image_size" in sizes and "patch_size" in sizes and sizes["image_size"] % sizes["patch_size"]:
            raise ValueError(f"image_size: {sizes['image_size']} is not divisible by patch_size {sizes['patch_size']}")
        heads = sizes.get("num_attention_heads")
        if "hidden_size" in sizes and heads and sizes["hidden_size"] % heads:
            raise ValueError(f"hidden_size: {sizes['hidden_size']} is not divisible by num_attention_heads {heads}")
        return self

    def set_sizes(self) -> dict[str, Any]:
        """The config values this spec sets (unset ones come from the checkpoint or the defaults)."""
        names = ("image_size", *STRUCTURE_FIELDS, *TUNABLE_FIELDS)
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def scratch_sizes(self) -> dict[str, Any]:
        """The full ViTConfig sizes of a model built without a checkpoint."""
        sizes = {**SCRATCH_SIZES, **self.set_sizes()}
        sizes.setdefault("intermediate_size", 4 * sizes["hidden_size"])
        return sizes


class HFViT(ModelBuilder):
    """Hugging Face transformers ViT (or any ViT-family checkpoint), from a config, a folder or the hub."""

    name = "hf_vit"
    Options = HFViTOptions
    options: HFViTOptions

    def __init__(self, options: HFViTOptions | None = None) -> None:
        super().__init__(options)
        #: The ``pretrained`` folder as ``build`` resolved it, so ``preprocessing`` reads the same one.
        self._folder: Path | None = None

    def build(self, ctx: ModelContext) -> "torch.nn.Module":
        from vitcore_vit_hf.classifier import HFImageClassifier
        from vitcore_vit_hf.loading import (
            architecture_only,
            from_config,
            from_pretrained,
            name_the_loss,
        )

        pretrained = self.options.pretrained
        self._folder = folder = resolve_pretrained(pretrained, ctx.spec_dir, weights=ctx.load_pretrained) \
            if pretrained else None
        if folder is None:
            hf_model = from_config(self.options, ctx.class_names)
        elif not ctx.load_pretrained:  # evaluate/predict/export: the run's checkpoint follows
            hf_model = architecture_only(folder, self.options, ctx.class_names)
        else:
            hf_model = from_pretrained(folder, self.options, ctx.class_names)
        hf_model.set_attn_implementation(self.options.attn_implementation)
        name_the_loss(hf_model)
        # from_pretrained leaves eval mode; hand over a training-mode module like every builder.
        return HFImageClassifier(hf_model).train()

    def preprocessing(self) -> Preprocessing:
        if not self.options.pretrained:
            return Preprocessing(self.options.scratch_sizes()["image_size"])
        folder = self._folder or resolve_pretrained(self.options.pretrained, Path.cwd(), weights=False)
        image_size = self.options.image_size or _square_side(read_json(folder / "config.json") or {})
        return preprocessing_from_config(read_json(folder / "preprocessor_config.json"), image_size)

    def no_weight_decay(self, model: "torch.nn.Module") -> set[str]:
        # HF names them position_embeddings / distillation_token / register_tokens, which the
        # engine's keyword list (pos_embed, cls_token, ...) does not all catch.
        return {n for n, _ in model.named_parameters() if n.endswith(("position_embeddings", "_token", "_tokens"))}


def _square_side(config: dict[str, Any]) -> int:
    size = config.get("image_size", SCRATCH_SIZES["image_size"])
    return int(size[0] if isinstance(size, (list, tuple)) else size)
