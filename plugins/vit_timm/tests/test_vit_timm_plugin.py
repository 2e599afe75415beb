"""The plugin as installed: entry-point discovery, a light import, option errors that name the field."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from vitcore_vit_timm.augment import TimmMixup, TimmRandAugment, TimmRandomErasing
from vitcore_vit_timm.models import TimmViT
from vitcore_vit_timm.options import TimmViTOptions

from vitcore.api import ModelContext, SpecError, VitcoreError, load_dict, registry


def _python(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_installed_entry_point_is_listed_with_its_components():
    out = _python("-m", "vitcore", "plugins", "list", "--json")
    listed = {p["name"]: p for p in json.loads(out)}
    ours = listed["vitcore-vit-timm"]
    assert ours["status"] == "ok" and ours["version"] == "0.1.0" and ours["module"] == "vitcore_vit_timm"
    assert ours["components"] == {
        "models": ["timm_vit"],
        "augmentations": ["timm_mixup", "timm_rand_augment", "timm_random_erasing"],
    }
    assert registry("models").get("timm_vit").plugin == "vitcore-vit-timm"
    assert registry("augmentations").get("timm_mixup").plugin == "vitcore-vit-timm"


def test_importing_the_plugin_loads_neither_torch_nor_timm():
    out = _python("-c", "import sys, vitcore_vit_timm, vitcore_vit_timm.models, vitcore_vit_timm.augment; "
                  "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")
    assert out.strip() == "[]"


def _spec(tmp_path, augmentations=(), **model) -> dict:
    return {"data": {"type": "imagefolder", "root": str(tmp_path)}, "model": {"type": "timm_vit", **model},
            "augmentations": list(augmentations)}


@pytest.mark.parametrize(("model", "message"), [
    ({"name": "vit_tiny_patch16"}, r"model\.name: .*unknown timm ViT model 'vit_tiny_patch16'; close names: "
                                   r".*vit_tiny_patch16_224"),
    ({"name": "resnet50"}, r"model\.name: .*'resnet50' is a timm model but not a Vision Transformer"),
    ({"name": "vit_tiny_patch16_224.nope"}, r"model\.name: .*no pretrained tag 'nope' .*augreg_in21k"),
    ({"weights": "w.pth", "hf_hub_id": "timm/x"}, r"model\.hf_hub_id: .*not both"),
    ({"img_size": 30, "patch_size": 8}, r"model\.patch_size: .*img_size 30 is not divisible by patch_size 8"),
    ({"embed_dim": 30, "num_heads": 4}, r"model\.num_heads: .*embed_dim 30 is not divisible by num_heads 4"),
    ({"global_pool": "token", "class_token": False}, r"model\.class_token: .*needs the class token"),
    ({"global_pool": "mean"}, r"model\.global_pool: "),
    ({"finetune": "freeze_blocks"}, r"model\.freeze_blocks: .*needs freeze_blocks >= 1"),
    ({"freeze_blocks": 2}, r"model\.freeze_blocks: .*only used with finetune: freeze_blocks"),
    ({"layer_decay": 1.5}, r"model\.layer_decay: "),
    ({"mean": [0.5, 0.5]}, r"model\.mean\[2\]: "),
    ({"interpolation": "cubic"}, r"model\.interpolation: "),
    ({"depht": 2}, r"model\.depht: unknown field"),
])
def test_option_errors_name_the_field(tmp_path, model, message):
    with pytest.raises(SpecError, match=message):
        load_dict(_spec(tmp_path, **{"name": "vit_tiny_patch16_224", **model}))


@pytest.mark.parametrize(("augmentation", "message"), [
    ({"type": "timm_rand_augment", "config_str": "rand-x9"}, r"augmentations\[0\]\.config_str: .*rand-m9"),
    ({"type": "timm_rand_augment", "config_str": "auto-m9"}, r"augmentations\[0\]\.config_str: "),
    ({"type": "timm_mixup", "mixup_alpha": 0, "cutmix_alpha": 0}, r"augmentations\[0\]\.cutmix_alpha: .*both 0"),
    ({"type": "timm_mixup", "mode": "row"}, r"augmentations\[0\]\.mode: "),
    ({"type": "timm_random_erasing", "min_area": 0.5, "max_area": 0.2}, r"augmentations\[0\]\.max_area: "),
    ({"type": "timm_random_erasing", "min_count": 3, "max_count": 2}, r"augmentations\[0\]\.max_count: "),
])
def test_augmentation_option_errors_name_the_field(tmp_path, augmentation, message):
    with pytest.raises(SpecError, match=message):
        load_dict(_spec(tmp_path, [augmentation], name="vit_tiny_patch16_224"))


def test_a_valid_spec_resolves_and_survives_a_json_round_trip(tmp_path, tiny):
    spec = _spec(tmp_path, [{"type": "timm_rand_augment"}, {"type": "timm_mixup"}],
                 **tiny, finetune="freeze_blocks", freeze_blocks=1, layer_decay=0.75, mean=[0.4, 0.4, 0.4])
    resolved = load_dict(spec)
    again = load_dict(json.loads(json.dumps(resolved.to_dict())))
    assert again.model.options == resolved.model.options
    assert resolved.model.options.mean == (0.4, 0.4, 0.4)


@pytest.mark.parametrize("component", [TimmViTOptions, TimmRandAugment.Options, TimmMixup.Options,
                                       TimmRandomErasing.Options])
def test_every_option_is_described(component):
    assert all(field.description for field in component.model_fields.values())


def test_build_time_errors_name_the_field(tmp_path, tiny):
    ctx = ModelContext(num_classes=3, class_names=["a", "b", "c"], spec_dir=tmp_path)
    with pytest.raises(VitcoreError, match=r"model\.freeze_blocks: 3, but vit_tiny_patch16_224 has 2 blocks"):
        TimmViT(TimmViTOptions(**tiny, finetune="freeze_blocks", freeze_blocks=3)).build(ctx)
    with pytest.raises(VitcoreError, match=r"model\.class_token: timm's beit_base_patch16_224 does not take"):
        TimmViT(TimmViTOptions(**{**tiny, "name": "beit_base_patch16_224"}, class_token=True)).build(ctx)
    no_heads = {k: v for k, v in tiny.items() if k != "num_heads"}  # vit_tiny's 3 heads do not divide 32
    with pytest.raises(VitcoreError, match=r"model: timm cannot build vit_tiny_patch16_224 with .*'embed_dim': 32"):
        TimmViT(TimmViTOptions(**no_heads)).build(ctx)
