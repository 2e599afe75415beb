"""The plugin as installed: entry-point discovery, a light import, option and exporter errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from vitcore_vit_hf.models import HFViT, HFViTOptions

from vitcore.api import ExportContext, ModelContext, Preprocessing, SpecError, VitcoreError, load_dict, registry


def _python(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_installed_entry_point_is_listed_with_its_components():
    out = _python("-m", "vitcore", "plugins", "list", "--json")
    listed = {p["name"]: p for p in json.loads(out)}
    ours = listed["vitcore-vit-hf"]
    assert ours["status"] == "ok" and ours["version"] == "0.1.0" and ours["module"] == "vitcore_vit_hf"
    assert ours["components"] == {"models": ["hf_vit"], "exporters": ["hf_pretrained"]}
    assert registry("models").get("hf_vit").plugin == "vitcore-vit-hf"
    assert registry("exporters").get("hf_pretrained").plugin == "vitcore-vit-hf"


def test_importing_the_plugin_loads_neither_torch_nor_transformers():
    out = _python("-c", "import sys, vitcore_vit_hf, vitcore_vit_hf.models, vitcore_vit_hf.export; "
                  "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    assert out.strip() == "[]"


def _spec(tmp_path, **model) -> dict:
    return {"data": {"type": "imagefolder", "root": str(tmp_path)}, "model": {"type": "hf_vit", **model}}


@pytest.mark.parametrize(("model", "message"), [
    ({"image_size": 30, "patch_size": 8}, "image_size: 30 is not divisible by patch_size 8"),
    ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size: 30 is not divisible by num_attention_heads 4"),
    ({"attn_implementation": "flash"}, "model.attn_implementation"),
    ({"architecture": "ViTModel"}, "model.architecture"),
    ({"hidden_dropout_prob": 1.5}, "model.hidden_dropout_prob"),
    ({"pretrained": ""}, "model.pretrained"),
    ({"layers": 2}, "model.layers: unknown field"),
])
def test_option_errors_name_the_field(tmp_path, model, message):
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        load_dict(_spec(tmp_path, **model))


def test_every_option_is_described():
    assert all(field.description for field in HFViTOptions.model_fields.values())


def test_a_checkpoint_fixes_the_structure_and_the_error_names_the_field(tmp_path, save_tiny_vit):
    folder = save_tiny_vit(tmp_path / "ckpt")
    builder = HFViT(HFViTOptions(pretrained=str(folder), hidden_size=64))
    with pytest.raises(VitcoreError, match=r"model\.hidden_size: 64 differs from the checkpoint's 32"):
        builder.build(ModelContext(num_classes=3, class_names=["a", "b", "c"]))
    builder = HFViT(HFViTOptions(pretrained=str(folder), image_size=36))
    with pytest.raises(VitcoreError, match=r"model\.image_size: 36 is not divisible"):
        builder.build(ModelContext(num_classes=3, class_names=["a", "b", "c"]))


def test_a_missing_folder_is_reported_as_a_folder(tmp_path):
    builder = HFViT(HFViTOptions(pretrained="./nowhere/model"))
    with pytest.raises(VitcoreError, match=r"model\.pretrained: folder .*nowhere.* not found"):
        builder.build(ModelContext(num_classes=2, class_names=["a", "b"], spec_dir=tmp_path))


def test_the_exporter_refuses_models_it_cannot_save(tmp_path):
    import torch

    ctx = ExportContext(run_dir=tmp_path, model=torch.nn.Linear(2, 2), classes=["a", "b"],
                        preprocessing=Preprocessing(32), spec={"model": {"type": "torchvision_vit"}})
    from vitcore_vit_hf.export import HFPretrainedExporter

    with pytest.raises(VitcoreError, match="hf_pretrained exports hf_vit models only.*'torchvision_vit'"):
        HFPretrainedExporter().export(ctx)
    assert not (tmp_path / "exports" / "hf").exists()
