"""vitcore plugin: Hugging Face transformers ViT models (``hf_vit``) and exports (``hf_pretrained``).

Importing this package loads neither torch nor transformers: ``vitcore plugins list`` and
``vitcore --help`` import every plugin, and must stay fast.
"""

from __future__ import annotations

import vitcore
from vitcore.api import Register

__version__ = "0.1.0"

#: The vitcore plugin API this plugin is written against (see docs/PLUGINS.md).
VITCORE_PLUGIN_API = ">=1.0,<2"


@vitcore.hookimpl
def register_models(register: Register) -> None:
    from vitcore_vit_hf.models import HFViT

    register(HFViT)


@vitcore.hookimpl
def register_exporters(register: Register) -> None:
    from vitcore_vit_hf.export import HFPretrainedExporter

    register(HFPretrainedExporter)


@vitcore.hookimpl
def vit_view(model):
    from vitcore_vit_hf.view import hf_view

    return hf_view(model)
