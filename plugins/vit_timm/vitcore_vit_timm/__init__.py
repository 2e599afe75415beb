"""vitcore plugin: timm Vision Transformers (``timm_vit``) and timm's augmentations.

Importing this package loads neither torch nor timm: ``vitcore plugins list`` and ``vitcore --help``
import every plugin, and must stay fast. The component modules import them inside functions.
"""

from __future__ import annotations

import vitcore
from vitcore.api import Register

__version__ = "0.1.0"

#: The vitcore plugin API this plugin is written against (see docs/PLUGINS.md).
VITCORE_PLUGIN_API = ">=1.0,<2"


@vitcore.hookimpl
def register_models(register: Register) -> None:
    from vitcore_vit_timm.models import TimmViT

    register(TimmViT)


@vitcore.hookimpl
def register_augmentations(register: Register) -> None:
    from vitcore_vit_timm.augment import TimmMixup, TimmRandAugment, TimmRandomErasing

    for component in (TimmRandAugment, TimmMixup, TimmRandomErasing):
        register(component)


@vitcore.hookimpl
def vit_view(model):
    from vitcore_vit_timm.view import timm_view

    return timm_view(model)
