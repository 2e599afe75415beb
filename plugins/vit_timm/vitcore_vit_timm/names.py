"""Which timm models ``timm_vit`` builds, and what to say about a name it does not.

timm is imported inside the functions: this module is imported when options are validated.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

#: timm modules whose models are plain ViTs (patch embedding, blocks, a classifier head) with
#: ``group_matcher``, ``no_weight_decay`` and ``reset_classifier``, which fine-tuning relies on, and
#: whose checkpoints timm adapts to another image size (CaiT's and ConViT's it does not).
VIT_MODULES = ("vision_transformer", "deit", "eva", "beit", "vision_transformer_relpos", "xcit", "naflexvit")


@lru_cache(maxsize=1)
def vit_models() -> frozenset[str]:
    import timm

    return frozenset(name for module in VIT_MODULES for name in timm.list_models(module=module))


def check_name(name: str) -> str:
    """Return ``name`` (``arch`` or ``arch.pretrained_tag``) if timm builds it as a ViT, else raise
    ValueError naming close alternatives, so a typo is caught when the spec is read."""
    import timm
    from timm.models import model_entrypoint, split_model_name_tag

    arch, tag = split_model_name_tag(name)
    if arch not in vit_models():
        if timm.is_model(arch):
            module = model_entrypoint(arch).__module__.rsplit(".", 1)[-1]
            raise ValueError(f"{arch!r} is a timm model but not a Vision Transformer (timm module {module}); "
                             f"timm_vit builds models of the timm modules {', '.join(VIT_MODULES)}")
        close = difflib.get_close_matches(arch, sorted(vit_models()), n=5, cutoff=0.6)
        hint = f"close names: {', '.join(close)}" if close else "list them with timm.list_models('vit_*')"
        raise ValueError(f"unknown timm ViT model {arch!r}; {hint}")
    if tag and name not in timm.list_pretrained(f"{arch}.*"):
        tags = [n.split(".", 1)[1] for n in timm.list_pretrained(f"{arch}.*")]
        raise ValueError(f"timm has no pretrained tag {tag!r} for {arch}; its tags: {', '.join(tags) or 'none'}")
    return name
