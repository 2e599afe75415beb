"""Pretrained weights: local files and folders, the Hugging Face cache offline, and what misfits say."""

from __future__ import annotations

import os

import pytest
import torch
from vitcore_vit_timm.models import TimmViT
from vitcore_vit_timm.options import TimmViTOptions

from vitcore.api import ModelContext, VitcoreError

ADAPTED = ("head.weight", "head.bias", "pos_embed")


def _build(options: dict, num_classes: int = 3, **ctx) -> torch.nn.Module:
    names = [f"c{i}" for i in range(num_classes)]
    return TimmViT(TimmViTOptions(**options)).build(ModelContext(num_classes, names, **ctx))


def _assert_adapted(model: torch.nn.Module, source: torch.nn.Module, num_classes: int, grid: int) -> None:
    """Every tensor but the head and position embeddings is the file's, bit for bit; those two fit."""
    ours, theirs = model.state_dict(), source.state_dict()
    assert ours.keys() == theirs.keys()
    for key, tensor in theirs.items():
        if key not in ADAPTED:
            assert torch.equal(ours[key], tensor), key
    dim = theirs["pos_embed"].shape[-1]
    assert ours["head.weight"].shape == (num_classes, dim) and ours["head.bias"].shape == (num_classes,)
    assert ours["pos_embed"].shape == (1, 1 + grid * grid, dim)
    assert torch.equal(ours["pos_embed"][:, 0], theirs["pos_embed"][:, 0]), "the class token's row is kept"
    assert model.training
    assert model(torch.randn(2, 3, grid * 8, grid * 8)).shape == (2, num_classes)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_local_file_loads_with_a_new_head_and_a_resized_position_grid(tmp_path, tiny, tiny_timm, save_weights,
                                                                       suffix):
    source = tiny_timm(num_classes=5)
    path = save_weights(source, tmp_path / f"tiny{suffix}")
    model = _build({**tiny, "weights": str(path), "img_size": 48}, num_classes=3)
    _assert_adapted(model, source, num_classes=3, grid=6)
    assert model.pretrained_cfg["file"] == str(path)


def test_the_same_class_count_keeps_the_checkpoints_head(tmp_path, tiny, tiny_timm, save_weights):
    source = tiny_timm(num_classes=3)
    model = _build({**tiny, "weights": str(save_weights(source, tmp_path / "w.safetensors"))}, num_classes=3)
    for key, tensor in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], tensor), key


def test_a_timm_folder_a_wrapped_checkpoint_and_a_spec_relative_path_load(tmp_path, tiny, tiny_timm, save_weights):
    source = tiny_timm(num_classes=5)
    folder = tmp_path / "specs" / "weights" / "tiny"
    save_weights(source, folder / "pytorch_model.bin")
    model = _build({**tiny, "weights": "weights/tiny", "img_size": 48}, spec_dir=tmp_path / "specs")
    _assert_adapted(model, source, num_classes=3, grid=6)

    # A training checkpoint (weights under "state_dict", as timm's train script and vitcore's exports save them).
    torch.save({"epoch": 3, "state_dict": source.state_dict()}, tmp_path / "checkpoint.pth")
    _assert_adapted(_build({**tiny, "weights": str(tmp_path / "checkpoint.pth")}), source, num_classes=3, grid=4)


def test_a_checkpoint_of_another_architecture_is_refused_not_half_loaded(tmp_path, tiny, tiny_timm, save_weights):
    path = save_weights(tiny_timm(num_classes=5), tmp_path / "two_blocks.safetensors")
    with pytest.raises(VitcoreError, match=r"model\.weights: .*two_blocks\.safetensors does not load into timm's "
                                           r"vit_tiny_patch16_224 .*Unexpected key\(s\).*blocks\.1\..*Check that "
                                           r"model\.name and the size options match"):
        _build({**tiny, "weights": str(path), "depth": 1})


def test_weight_file_errors_say_what_to_do(tmp_path, tiny):
    with pytest.raises(VitcoreError, match=r"model\.weights: .*missing\.pth not found: copy a checkpoint"):
        _build({**tiny, "weights": str(tmp_path / "missing.pth")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(VitcoreError, match=r"model\.weights: folder .*empty holds neither model\.safetensors nor "
                                           r"pytorch_model\.bin"):
        _build({**tiny, "weights": str(tmp_path / "empty")})
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VitcoreError, match=r"model\.weights: .*notes\.txt is not a weight file"):
        _build({**tiny, "weights": str(tmp_path / "notes.txt")})
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(VitcoreError, match=r"model\.weights: cannot read .*broken\.pth as a state dict"):
        _build({**tiny, "weights": str(tmp_path / "broken.pth")})
    (tmp_path / "broken.npz").write_bytes(b"not numpy either")
    with pytest.raises(VitcoreError, match=r"model\.weights: .*broken\.npz does not load into timm's"):
        _build({**tiny, "weights": str(tmp_path / "broken.npz")})


def test_rebuilding_for_a_checkpoint_reads_no_weight_file(tmp_path, tiny):
    """evaluate/predict/export build with load_pretrained=False; the weights may have moved."""
    model = _build({**tiny, "weights": str(tmp_path / "moved.pth")}, load_pretrained=False)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


# --------------------------------------------------------------------------------------------
# The Hugging Face cache, offline (downloads: test_vit_timm_download.py)
# --------------------------------------------------------------------------------------------


def test_hf_hub_id_loads_from_the_offline_cache(tiny, tiny_timm, hf_cache):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    source = tiny_timm(num_classes=5)
    hf_cache("timm/tiny_vit_test", source)
    model = _build({**tiny, "hf_hub_id": "timm/tiny_vit_test", "img_size": 48})
    _assert_adapted(model, source, num_classes=3, grid=6)


def test_pretrained_reads_timms_default_hub_id_and_hf_home_is_the_fallback_cache(tmp_path, monkeypatch, tiny,
                                                                                  tiny_timm, hf_cache):
    monkeypatch.delenv("HF_HUB_CACHE")
    source = tiny_timm(num_classes=5)
    hf_cache("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", source, cache=tmp_path / "hf-home" / "hub")
    _assert_adapted(_build({**tiny, "pretrained": True}), source, num_classes=3, grid=4)


def test_a_missing_cache_entry_offline_says_where_it_looked_and_how_to_provide_weights(tmp_path, tiny, tiny_timm,
                                                                                     hf_cache):
    """More cases (online, unreachable, a download) in test_vit_timm_download.py."""
    hf_cache("timm/other", tiny_timm())
    cache = tmp_path / "hf-cache"
    with pytest.raises(VitcoreError) as info:
        _build({**tiny, "hf_hub_id": "timm/not_cached"})
    message = str(info.value)
    assert message.startswith("model.hf_hub_id: timm/not_cached is not in the Hugging Face cache and HF_HUB_OFFLINE")
    assert str(cache / "models--timm--not_cached") in message
    assert f"HF_HUB_CACHE={str(cache)!r}" in message and "HF_HOME=" in message
    assert "hf download timm/not_cached" in message and "model.weights" in message

    with pytest.raises(VitcoreError, match=r"model\.pretrained: timm/vit_tiny_patch16_224\.augreg_in21k_ft_in1k "
                                           r"is not in the Hugging Face cache"):
        _build({**tiny, "pretrained": True})
