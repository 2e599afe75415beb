"""hf_vit and hf_pretrained keep vitcore's component contracts, checked by vitcore.testing's kit."""

from __future__ import annotations

from vitcore_vit_hf.export import HFPretrainedExporter
from vitcore_vit_hf.models import HFViT

from vitcore.testing import check_exporter, check_model_builder


def test_hf_vit_keeps_the_model_builder_contract(tiny):
    model = check_model_builder(HFViT, tiny)
    assert model.hf_model.config.num_labels == 2  # the first class count the kit builds


def test_hf_pretrained_keeps_the_exporter_contract(tiny, tmp_path):
    paths = check_exporter(HFPretrainedExporter, None, tmp_path, model={"type": "hf_vit", **tiny})
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in paths}
    assert all(p.parent.name == "hf" for p in paths)
