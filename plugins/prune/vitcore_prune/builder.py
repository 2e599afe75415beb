"""The ``pruned`` model builder: a base model entry, built as usual, then narrowed by a plan.

``{"type": "pruned", "base": {"type": "timm_vit", ...}, "heads": ["0,2,3", ...], "mlp": [...]}``
builds the base architecture (its own builder, its own options) and removes every head and MLP
channel the lists do not keep, before any weights load: so ``vitcore evaluate``, ``export`` and
``resume`` rebuild a pruned run from its spec.json like any other. With ``model.init_from`` the
source run's full-size weights are sliced onto it (the model's ``vitcore_source_state``).
torch is imported when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from vitcore.api import ModelBuilder, ModelContext, Options, Preprocessing, SpecError
from vitcore_prune.plan import Plan, parse_indices

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


class PrunedOptions(Options):
    base: dict[str, Any] = Field(
        description="The model entry it was pruned from, e.g. {\"type\": \"torchvision_vit\", ...}: built first, "
                    "with its own options (no init_from inside it).",
    )
    heads: list[str] | None = Field(
        None, description="Per block, the attention heads kept, as indices and ranges (\"0,2-3\"); every block "
                          "keeps as many. null: all.",
    )
    mlp: list[str] | None = Field(
        None, description="Per block, the MLP hidden channels kept (\"0-95,100\"). null: all.",
    )

    @field_validator("heads", "mlp")
    @classmethod
    def _indices(cls, value: list[str] | None) -> list[str] | None:
        for text in value or []:
            parse_indices(text)  # a ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _base_is_a_model(self) -> "PrunedOptions":
        from vitcore.api import resolve_component

        if self.base.get("type") == PrunedViT.name:
            raise ValueError("base: is itself a pruned model; give the original model entry (prune the original "
                             "run with the larger shares)")
        if "init_from" in self.base:
            raise ValueError("base.init_from: not allowed inside base; put init_from on the model entry itself")
        try:
            resolve_component(dict(self.base), "models", "base")
        except SpecError as exc:
            raise ValueError(str(exc).replace("<spec>: ", "")) from None
        return self

    def plan(self) -> Plan:
        return Plan.from_options(self.heads, self.mlp)


class PrunedViT(ModelBuilder):
    """A torchvision, timm or HF ViT with attention heads and MLP channels removed (vitcore prune)."""

    name = "pruned"
    Options = PrunedOptions
    options: PrunedOptions

    def __init__(self, options: PrunedOptions | None = None) -> None:
        super().__init__(options)
        self._base: ModelBuilder | None = None

    def base_builder(self) -> ModelBuilder:
        if self._base is None:
            from vitcore.api import resolve_component

            self._base = resolve_component(dict(self.options.base), "models", "model.base").instantiate()
        return self._base

    def build(self, ctx: ModelContext) -> "torch.nn.Module":
        from vitcore_prune.surgery import prune

        model = self.base_builder().build(ctx)
        # Read by model.init_from: the source run's full-size weights, sliced to this model.
        model.vitcore_source_state = prune(model, self.options.plan())
        return model

    def preprocessing(self) -> Preprocessing:
        return self.base_builder().preprocessing()

    def no_weight_decay(self, model: "torch.nn.Module") -> set[str]:
        return self.base_builder().no_weight_decay(model)

    def param_groups(self, model: "torch.nn.Module", weight_decay: float, lr: float) -> list[dict[str, Any]] | None:
        return self.base_builder().param_groups(model, weight_decay, lr)
