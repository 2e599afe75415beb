"""The torchvision_vit builder on tiny custom ViTs, and loading/adapting saved weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from vitcore.builtin.models import TorchvisionViT
from vitcore.components import ModelContext
from vitcore.errors import VitcoreError
from vitcore.weights import adapt_state_dict, head_keys, load_state_dict_file, resize_pos_embed

TINY = dict(image_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2)
HEAD = ("heads.head.weight", "heads.head.bias")
POS = "encoder.pos_embedding"


def build(num_classes: int = 3, spec_dir: Path = Path.cwd(), **options) -> torch.nn.Module:
    builder = TorchvisionViT(TorchvisionViT.Options(**{**TINY, **options}))
    names = [f"c{i}" for i in range(num_classes)]
    return builder.build(ModelContext(num_classes=num_classes, class_names=names, spec_dir=spec_dir))


@pytest.mark.parametrize("num_classes", [2, 5, 11])
def test_output_shape(num_classes):
    model = build(num_classes).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, num_classes)


def test_preprocessing_and_no_weight_decay():
    custom = TorchvisionViT(TorchvisionViT.Options(**TINY))
    assert custom.preprocessing().mean == (0.5, 0.5, 0.5)
    assert custom.preprocessing().image_size == 32
    named = TorchvisionViT(TorchvisionViT.Options(arch="vit_b_32", image_size=64))
    pre = named.preprocessing()
    assert (pre.image_size, pre.mean, pre.std) == (64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert custom.no_weight_decay(build()) == {"class_token", POS}


def test_named_arch_sizes():
    options = TorchvisionViT.Options(arch="vit_l_32", image_size=64)
    assert options.architecture().depth == 24 and options.architecture().embed_dim == 1024


@pytest.mark.parametrize(
    "options, message",
    [
        ({"image_size": 30, "patch_size": 8}, "image_size: 30 is not divisible by patch_size 8"),
        ({"embed_dim": 30, "num_heads": 4}, "embed_dim: 30 is not divisible by num_heads 4"),
        ({"arch": "vit_b_16", "depth": 2}, "depth: arch 'vit_b_16' fixes"),
        ({"arch": "vit_h_14", "image_size": 100}, "image_size: 100 is not divisible by patch_size 14"),
        ({"dropout": 1.5}, "dropout"),
        ({"arch": "vit_x"}, "arch"),
        ({"depht": 2}, "depht"),
    ],
)
def test_options_validation(options, message):
    with pytest.raises(ValidationError, match=message):
        TorchvisionViT.Options(**options)


def test_options_survive_a_dump_and_reload():
    options = TorchvisionViT.Options(arch="vit_b_16", image_size=384)
    assert TorchvisionViT.Options(**options.model_dump()) == options


def save(model: torch.nn.Module, path: Path) -> Path:
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_with_new_classes_and_image_size(tmp_path, suffix):
    source = build(3)
    saved = source.state_dict()
    path = save(source, tmp_path / f"vit{suffix}")
    model = build(7, weights=str(path), image_size=48)
    state = model.state_dict()
    for key, value in saved.items():
        if key not in (*HEAD, POS):
            assert torch.equal(state[key], value), key
    assert state["heads.head.weight"].shape == (7, 32)
    assert state["heads.head.bias"].shape == (7,)
    assert state[POS].shape == (1, 1 + 6 * 6, 32)
    assert torch.equal(state[POS][:, :1], saved[POS][:, :1])  # class-token embedding kept
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 48, 48)).shape == (1, 7)


def test_same_size_weights_load_exactly(tmp_path):
    source = build(3)
    path = save(source, tmp_path / "vit.pt")
    torch.save({"model": torch.load(path, weights_only=True), "epoch": 4}, tmp_path / "ckpt.pt")
    model = build(3, weights="ckpt.pt", spec_dir=tmp_path)  # relative to the spec's folder
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_missing_weights_file(tmp_path):
    with pytest.raises(VitcoreError, match=r"(?s)nowhere\.pth not found.*never downloads.*model\.weights"):
        build(weights=str(tmp_path / "nowhere.pth"))


def test_weights_that_do_not_fit(tmp_path):
    path = save(build(3, depth=1), tmp_path / "shallow.pth")
    with pytest.raises(VitcoreError, match=r"does not fit.*missing keys: encoder\.layers\.encoder_layer_1"):
        build(3, depth=2, weights=str(path))
    state = build(3).state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(VitcoreError, match=r"unexpected keys: extra\.weight"):
        build(3, weights=str(tmp_path / "extra.pth"))
    path = save(build(3, embed_dim=64), tmp_path / "wide.pth")
    with pytest.raises(VitcoreError, match=r"shape mismatches .*class_token \(1, 1, 64\) vs \(1, 1, 32\)"):
        build(3, weights=str(path))


def test_unreadable_weights_file(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(VitcoreError, match="junk.pth: not a PyTorch weights file"):
        load_state_dict_file(tmp_path / "junk.pth")


def test_resize_pos_embed_keeps_prefix_and_identity():
    pos = torch.randn(1, 1 + 16, 8)
    assert resize_pos_embed(pos, 4) is pos
    bigger = resize_pos_embed(pos, 6)
    assert bigger.shape == (1, 37, 8) and torch.equal(bigger[:, :1], pos[:, :1])
    # torchvision's interpolation pins the grid's corners (align_corners): the first patch stays.
    assert torch.allclose(bigger[:, 1], pos[:, 1], atol=1e-6)
    constant = torch.ones(1, 1 + 16, 8)
    assert torch.allclose(resize_pos_embed(constant, 3), torch.ones(1, 10, 8))


@pytest.mark.parametrize("prefix", [0, 2, 5])
def test_resize_pos_embed_with_any_number_of_prefix_tokens(prefix):
    grid = torch.randn(1, 16, 8)
    table = torch.cat([torch.randn(1, prefix, 8), grid], dim=1)
    resized = resize_pos_embed(table, 6, num_prefix_tokens=prefix)
    assert resized.shape == (1, prefix + 36, 8)
    assert torch.equal(resized[:, :prefix], table[:, :prefix])
    one_prefix = resize_pos_embed(torch.cat([torch.zeros(1, 1, 8), grid], dim=1), 6)
    assert torch.allclose(resized[:, prefix:], one_prefix[:, 1:])  # the grid alone decides the rows
    with pytest.raises(VitcoreError, match="square patch grid"):
        resize_pos_embed(torch.randn(1, prefix + 15, 8), 6, num_prefix_tokens=prefix)


def test_the_head_is_the_last_linear_layer_with_one_output_per_class():
    assert head_keys(build(5), 5) == list(HEAD)
    # A width equal to the class count: the MLP's second layers also give 32 outputs; the head is last.
    assert head_keys(build(32), 32) == list(HEAD)


def test_a_new_head_only_for_other_classes():
    model = build(5)
    fresh = model.state_dict()
    adapted = adapt_state_dict(build(3).state_dict(), model, 5)  # names unknown: the count decides
    assert adapted.new_head == list(HEAD) and adapted.problems == []
    assert all(torch.equal(adapted.state[k], fresh[k]) for k in HEAD)
    same_count = build(5).state_dict()
    kept = adapt_state_dict(same_count, model, 5)
    assert kept.new_head == [] and torch.equal(kept.state[HEAD[0]], same_count[HEAD[0]])
    renamed = adapt_state_dict(same_count, model, 5, same_classes=False)  # same count, other names
    assert renamed.new_head == list(HEAD) and torch.equal(renamed.state[HEAD[0]], fresh[HEAD[0]])
    wider = {**same_count, HEAD[0]: torch.zeros(3, 64)}  # another width too: a mismatch, not a new head
    mismatch = adapt_state_dict(wider, model, 5)
    assert mismatch.new_head == [] and mismatch.problems == [
        "shape mismatches (checkpoint vs model): heads.head.weight (3, 64) vs (5, 32)"]
