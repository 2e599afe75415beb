"""The ``timm_vit`` model builder. torch and timm are imported inside functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vitcore.api import ModelBuilder, ModelContext, Preprocessing
from vitcore_vit_timm.create import create_model
from vitcore_vit_timm.finetune import freeze, layer_decay_groups, no_decay_names
from vitcore_vit_timm.options import TimmViTOptions
from vitcore_vit_timm.weights import find_checkpoint

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


class TimmViT(ModelBuilder):
    """timm Vision Transformers (ViT, DeiT, EVA, BEiT...): from scratch, local weights or the HF hub."""

    name = "timm_vit"
    Options = TimmViTOptions
    options: TimmViTOptions

    def build(self, ctx: ModelContext) -> "torch.nn.Module":
        o = self.options
        checkpoint = find_checkpoint(o, ctx.spec_dir) if ctx.load_pretrained else None
        model = create_model(o.name, ctx.num_classes, o.architecture(), checkpoint)
        freeze(model, o.finetune, o.freeze_blocks)
        # The input side the run feeds (NaFlexViT takes any size, so the model cannot tell; vit_view reads it).
        size = self.preprocessing().image_size
        model.vitcore_image_size = (size, size)
        return model

    def preprocessing(self) -> Preprocessing:
        """The model's pretrained_cfg (timm's registry entry for name), under the explicit options.

        Never the checkpoint's: evaluate and export rebuild the model without reading weight files.
        """
        from timm.models import PretrainedCfg, get_pretrained_cfg

        cfg = get_pretrained_cfg(self.options.name) or PretrainedCfg()
        o = self.options
        return Preprocessing(
            image_size=o.img_size or cfg.input_size[-1],
            mean=tuple(o.mean or cfg.mean),
            std=tuple(o.std or cfg.std),
            interpolation=o.interpolation or cfg.interpolation,
            crop_pct=o.crop_pct or cfg.crop_pct,
        )

    def no_weight_decay(self, model: "torch.nn.Module") -> set[str]:
        return no_decay_names(model)

    def param_groups(self, model: "torch.nn.Module", weight_decay: float, lr: float) -> list[dict[str, Any]] | None:
        if self.options.layer_decay is None:
            return None  # the engine's groups, which skip frozen parameters too
        return layer_decay_groups(model, weight_decay, lr, self.options.layer_decay)
