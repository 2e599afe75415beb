"""Building hf_vit: from a config, from a folder or an offline hub cache, and its attention maps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import ViTForImageClassification
from vitcore_vit_hf.models import HFViT, HFViTOptions

from vitcore.api import ModelContext, VitcoreError

POS = "vit.embeddings.position_embeddings"
NEW_CLASSES = ["ant", "bee", "cat", "dog", "eel"]


def _ctx(names, spec_dir: Path | None = None) -> ModelContext:
    return ModelContext(num_classes=len(names), class_names=list(names), spec_dir=spec_dir or Path.cwd())


def test_a_folder_keeps_its_weights_under_a_new_head_and_image_size(tmp_path, save_tiny_vit):
    folder = save_tiny_vit(tmp_path / "ckpt", processor={
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
        "size": {"height": 32, "width": 32}, "resample": 3})
    original = ViTForImageClassification.from_pretrained(folder).state_dict()

    builder = HFViT(HFViTOptions(pretrained="ckpt", image_size=48))
    model = builder.build(_ctx(NEW_CLASSES, tmp_path))
    hf = model.hf_model
    loaded = hf.state_dict()

    same = [k for k in original if not k.startswith("classifier.") and k != POS]
    assert len(same) > 10
    for key in same:
        assert torch.equal(loaded[key], original[key]), key
    assert loaded["classifier.weight"].shape == (5, 32) and loaded["classifier.bias"].shape == (5,)
    assert hf.config.id2label == dict(enumerate(NEW_CLASSES))
    assert hf.config.label2id == {name: i for i, name in enumerate(NEW_CLASSES)}

    # The 4x4 grid was interpolated to 6x6 (not re-initialised); the class token's entry is kept.
    old = original[POS]
    grid = old[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    # vitcore's resize_pos_embed is torchvision's interpolate_embeddings: bicubic, corners aligned.
    expected = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=True)
    expected = expected.permute(0, 2, 3, 1)
    assert loaded[POS].shape == (1, 1 + 36, 32) and hf.config.image_size == 48
    assert torch.equal(loaded[POS][:, :1], old[:, :1])
    torch.testing.assert_close(loaded[POS][:, 1:], expected.reshape(1, 36, 32))

    assert model(torch.randn(2, 3, 48, 48)).shape == (2, 5)
    pre = builder.preprocessing()
    assert pre.image_size == 48 and pre.interpolation == "bicubic"
    assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225) and pre.crop_pct == 1.0
    assert any(n.endswith("position_embeddings") for n in builder.no_weight_decay(model))


def test_a_folder_without_a_processor_config_normalises_with_half(tmp_path, save_tiny_vit):
    folder = save_tiny_vit(tmp_path / "ckpt")
    builder = HFViT(HFViTOptions(pretrained=str(folder), hidden_dropout_prob=0.1))
    hf = builder.build(_ctx(["a", "b", "c"])).hf_model
    pre = builder.preprocessing()
    assert (pre.image_size, pre.mean, pre.std) == (32, (0.5,) * 3, (0.5,) * 3)
    assert hf.config.hidden_dropout_prob == 0.1
    original = ViTForImageClassification.from_pretrained(folder).state_dict()
    assert all(torch.equal(v, original[k]) for k, v in hf.state_dict().items()), "same classes: head kept too"


def test_a_hub_id_is_found_in_the_offline_cache_and_a_missing_one_says_where_it_looked(
        tmp_path, monkeypatch, save_tiny_vit):
    cache = tmp_path / "hf-home" / "hub"
    repo = cache / "models--tiny-org--tiny-vit"
    revision = "0123456789abcdef0123456789abcdef01234567"
    save_tiny_vit(repo / "snapshots" / revision, labels=("x", "y"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))

    model = HFViT(HFViTOptions(pretrained="tiny-org/tiny-vit")).build(_ctx(["x", "y"], tmp_path))
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 2)
    assert model.hf_model.config.id2label == {0: "x", 1: "y"}

    with pytest.raises(VitcoreError) as caught:
        HFViT(HFViTOptions(pretrained="tiny-org/absent")).build(_ctx(["x", "y"], tmp_path))
    message = str(caught.value)
    for part in ("model.pretrained", "tiny-org/absent", str(cache), "HF_HUB_CACHE", "HF_HOME",
                 "HF_HUB_OFFLINE is set", "hf download tiny-org/absent", "save_pretrained"):
        assert part in message, part


def test_attention_maps_run_eager_for_that_call_only(tiny):
    tiny["num_hidden_layers"] = 2
    model = HFViT(HFViTOptions(**tiny)).build(_ctx(["a", "b", "c"])).eval()
    assert model.hf_model.config._attn_implementation == "sdpa"
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = model(images)
        maps = model.attention_maps(images)
        after = model(images)
    assert len(maps) == 2
    for attention in maps:
        assert attention.shape == (3, 2, 17, 17)
        torch.testing.assert_close(attention.sum(-1), torch.ones(3, 2, 17))
    assert model.hf_model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(before, after)
    assert model.hf_model.config.id2label == {0: "a", 1: "b", 2: "c"}


def test_auto_architecture_loads_other_vit_families_keeping_every_prefix_token(tmp_path, tiny):
    from transformers import DeiTConfig, DeiTForImageClassification

    torch.manual_seed(0)
    DeiTForImageClassification(DeiTConfig(**tiny, num_labels=3)).to(torch.float16).save_pretrained(tmp_path / "deit")
    original = DeiTForImageClassification.from_pretrained(tmp_path / "deit").state_dict()

    with pytest.raises(VitcoreError, match=r"model\.architecture: the checkpoint is a 'deit' model"):
        HFViT(HFViTOptions(pretrained=str(tmp_path / "deit"))).build(_ctx(NEW_CLASSES))
    options = HFViTOptions(pretrained=str(tmp_path / "deit"), architecture="AutoModelForImageClassification",
                           image_size=48)
    model = HFViT(options).build(_ctx(NEW_CLASSES))
    hf = model.hf_model
    assert type(hf) is DeiTForImageClassification and hf.dtype == torch.float32
    pos = hf.state_dict()["deit.embeddings.position_embeddings"]
    assert pos.shape == (1, 2 + 36, 32), "class and distillation tokens kept, 4x4 grid now 6x6"
    assert torch.equal(pos[:, :2], original["deit.embeddings.position_embeddings"][:, :2].float())
    assert model(torch.randn(1, 3, 48, 48)).shape == (1, 5)


def test_rebuilding_for_a_checkpoint_reads_the_folder_config_but_not_its_weights(tmp_path, save_tiny_vit, monkeypatch):
    from vitcore_vit_hf import loading

    folder = save_tiny_vit(tmp_path / "ckpt")
    trained = HFViT(HFViTOptions(pretrained=str(folder), image_size=48)).build(_ctx(NEW_CLASSES))
    monkeypatch.setattr(loading, "read_checkpoint", lambda folder: pytest.fail("weights were read"))
    ctx = ModelContext(num_classes=5, class_names=NEW_CLASSES, load_pretrained=False)
    rebuilt = HFViT(HFViTOptions(pretrained=str(folder), image_size=48)).build(ctx)
    rebuilt.load_state_dict(trained.state_dict())  # same architecture: the checkpoint fits exactly
    assert rebuilt.hf_model.config.id2label[4] == "eel"
    images = torch.randn(2, 3, 48, 48)
    assert torch.allclose(rebuilt.eval()(images), trained.eval()(images))
