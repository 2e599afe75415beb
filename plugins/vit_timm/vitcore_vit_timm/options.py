"""The options of ``timm_vit``.

Cross-field checks sit on the later field (pydantic validates fields in order), so a spec error
reads ``model.<field>: ...`` and names the option to change.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from vitcore.api import Options, SpecPath
from vitcore_vit_timm.names import check_name

Unit = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]


class TimmViTOptions(Options):
    name: str = Field(
        description="A timm ViT-family model, optionally with a pretrained tag: vit_tiny_patch16_224, "
                    "deit_small_patch16_224, eva02_tiny_patch14_224.mim_in22k, beit_base_patch16_224...")
    pretrained: bool = Field(
        False, description="Load timm's default weights for name: from the Hugging Face cache, else downloaded "
                           "into it (HF_HUB_OFFLINE forbids that); weights or hf_hub_id, when set, say where instead.")
    weights: SpecPath | None = Field(
        None, description="Local weights: a .safetensors/.pth/.pt/.bin/.npz file, or a folder holding "
                          "model.safetensors or pytorch_model.bin (timm/HF layout); relative to the spec.")
    hf_hub_id: str | None = Field(
        None, description="A Hugging Face repo id (e.g. timm/vit_tiny_patch16_224.augreg_in21k): read from the "
                          "HF cache (HF_HUB_CACHE, else HF_HOME/hub), else downloaded into it from HF_ENDPOINT.")
    img_size: int | None = Field(None, ge=1, description="Input side in pixels; null: the model's (usually 224).")
    patch_size: int | None = Field(None, ge=1, description="Patch side in pixels; null: the model's.")
    depth: int | None = Field(None, ge=1, description="Number of transformer blocks; null: the model's.")
    embed_dim: int | None = Field(None, ge=1, description="Token width; null: the model's.")
    num_heads: int | None = Field(None, ge=1, description="Attention heads per block; null: the model's.")
    drop_path_rate: float | None = Field(
        None, ge=0, lt=1, description="Stochastic depth rate (largest at the last block); null: the model's (0).")
    global_pool: Literal["token", "avg", "max", "avgmax", "map"] | None = Field(
        None, description="How tokens become one vector: token (class token), avg, max, avgmax, map "
                          "(attention pooling); null: the model's.")
    class_token: bool | None = Field(None, description="Whether the model has a class token; null: the model's.")
    mean: tuple[Unit, Unit, Unit] | None = Field(
        None, description="Normalisation mean (of images scaled to 0-1); null: the model's pretrained_cfg.")
    std: tuple[Positive, Positive, Positive] | None = Field(
        None, description="Normalisation std; null: the model's pretrained_cfg.")
    interpolation: Literal["nearest", "bilinear", "bicubic"] | None = Field(
        None, description="Resampling when resizing images; null: the model's pretrained_cfg.")
    crop_pct: float | None = Field(
        None, gt=0, le=1, description="Evaluation resizes to img_size / crop_pct, then centre-crops; "
                                      "null: the model's pretrained_cfg.")
    finetune: Literal["full", "linear_probe", "freeze_blocks"] = Field(
        "full", description="full: train everything; linear_probe: only the classifier head; "
                            "freeze_blocks: freeze the patch embedding and the first freeze_blocks blocks.")
    freeze_blocks: int = Field(0, ge=0, validate_default=True, description="Blocks frozen with finetune: freeze_blocks.")
    layer_decay: float | None = Field(
        None, gt=0, le=1, description="Layer-wise learning-rate decay: a layer n layers below the head "
                                      "learns at lr * layer_decay**n; null: one lr for all.")

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return check_name(name)

    @field_validator("hf_hub_id")
    @classmethod
    def _one_source(cls, hf_hub_id: str | None, info: ValidationInfo) -> str | None:
        if hf_hub_id is not None and info.data.get("weights") is not None:
            raise ValueError("set either weights (a local file) or hf_hub_id (the Hugging Face hub), not both")
        return hf_hub_id

    @field_validator("patch_size")
    @classmethod
    def _divides_img_size(cls, patch_size: int | None, info: ValidationInfo) -> int | None:
        img_size = info.data.get("img_size")
        if patch_size and img_size and img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not divisible by patch_size {patch_size}")
        return patch_size

    @field_validator("num_heads")
    @classmethod
    def _divides_embed_dim(cls, num_heads: int | None, info: ValidationInfo) -> int | None:
        embed_dim = info.data.get("embed_dim")
        if num_heads and embed_dim and embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        return num_heads

    @field_validator("class_token")
    @classmethod
    def _token_pooling_needs_it(cls, class_token: bool | None, info: ValidationInfo) -> bool | None:
        if class_token is False and info.data.get("global_pool") == "token":
            raise ValueError("global_pool token needs the class token; set global_pool avg or class_token true")
        return class_token

    @field_validator("freeze_blocks")
    @classmethod
    def _with_finetune(cls, freeze_blocks: int, info: ValidationInfo) -> int:
        finetune = info.data.get("finetune")
        if finetune == "freeze_blocks" and freeze_blocks < 1:
            raise ValueError("finetune freeze_blocks needs freeze_blocks >= 1")
        if finetune != "freeze_blocks" and freeze_blocks:
            raise ValueError(f"only used with finetune: freeze_blocks (finetune is {finetune})")
        return freeze_blocks

    def architecture(self) -> dict[str, object]:
        """The size options that are set, as ``timm.create_model`` keyword arguments."""
        names = ("img_size", "patch_size", "depth", "embed_dim", "num_heads", "drop_path_rate", "global_pool",
                 "class_token")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}
