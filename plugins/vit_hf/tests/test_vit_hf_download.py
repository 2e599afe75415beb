"""hf_vit models named by hub id, downloaded from a Hugging Face hub served on 127.0.0.1
(vitcore.testing.LoopbackHub): only the files vitcore reads, into the cache, then read offline."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from transformers import ViTForImageClassification
from vitcore_vit_hf.models import HFViT, HFViTOptions

from vitcore.api import ModelContext, VitcoreError
from vitcore.testing import LoopbackHub

REPO = "tiny-org/tiny-vit"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _build(load_pretrained: bool = True) -> torch.nn.Module:
    ctx = ModelContext(num_classes=2, class_names=["x", "y"], load_pretrained=load_pretrained)
    return HFViT(HFViTOptions(pretrained=REPO)).build(ctx)


def test_a_hub_id_downloads_config_processor_and_weights_then_loads_offline(tmp_path, save_tiny_vit, monkeypatch):
    folder = save_tiny_vit(tmp_path / "src", labels=("x", "y"), processor={"image_mean": [0.4] * 3,
                                                                          "image_std": [0.2] * 3})
    original = ViTForImageClassification.from_pretrained(folder).state_dict()
    files = {**_files(folder), "README.md": b"# not read by vitcore", "pytorch_model.bin": b"the other format"}
    with LoopbackHub({REPO: files}) as hub:
        hub.serve_this_process(monkeypatch)
        model = _build()
        assert all(torch.equal(v, original[k]) for k, v in model.hf_model.state_dict().items())
        commit = hub.commits[REPO]
        assert hub.downloads() == [f"/{REPO}/resolve/main/config.json",
                                   f"/{REPO}/resolve/{commit}/preprocessor_config.json",
                                   f"/{REPO}/resolve/{commit}/model.safetensors"], "one format, from one commit"
        count = len(hub.requests)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        builder = HFViT(HFViTOptions(pretrained=REPO))
        builder.build(ModelContext(num_classes=2, class_names=["x", "y"]))
        assert builder.preprocessing().mean == (0.4, 0.4, 0.4)
        assert len(hub.requests) == count, "cached: no request"


def test_rebuilding_for_a_runs_checkpoint_downloads_the_configs_only(tmp_path, save_tiny_vit, monkeypatch):
    folder = save_tiny_vit(tmp_path / "src", labels=("x", "y"))  # no preprocessor_config.json: the hub has none
    with LoopbackHub({REPO: _files(folder)}) as hub:
        hub.serve_this_process(monkeypatch)
        model = _build(load_pretrained=False)
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 2)
        assert hub.downloads() == [f"/{REPO}/resolve/main/config.json"]
        assert ("HEAD", f"/{REPO}/resolve/{hub.commits[REPO]}/preprocessor_config.json") in hub.requests


def test_a_sharded_checkpoint_downloads_its_index_and_every_shard(tmp_path, monkeypatch, tiny):
    from transformers import ViTConfig

    torch.manual_seed(0)
    source = ViTForImageClassification(ViTConfig(**tiny, num_labels=2))
    source.save_pretrained(tmp_path / "src", max_shard_size="20KB")
    files = _files(tmp_path / "src")
    shards = sorted(name for name in files if name.startswith("model-"))
    assert len(shards) >= 2 and "model.safetensors.index.json" in files
    with LoopbackHub({REPO: files}) as hub:
        hub.serve_this_process(monkeypatch)
        model = _build()
        commit = hub.commits[REPO]
        assert hub.downloads()[-len(shards):] == [f"/{REPO}/resolve/{commit}/{name}" for name in shards]
    original = source.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in model.hf_model.state_dict().items())


def test_offline_and_unreachable_hubs_say_how_to_copy_the_model_by_hand(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    with pytest.raises(VitcoreError) as offline:  # the suite runs with HF_HUB_OFFLINE=1
        _build()
    message = str(offline.value)
    assert message.startswith(f"model.pretrained: {REPO} is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
    for part in (str(cache / "models--tiny-org--tiny-vit"), "no config.json", "unset HF_HUB_OFFLINE",
                 f"hf download {REPO} --cache-dir DIR", "save_pretrained", "set model.pretrained to that folder"):
        assert part in message, part

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    with LoopbackHub({}) as hub:
        hub.serve_this_process(monkeypatch)
        monkeypatch.setenv("HF_ENDPOINT", endpoint)  # nothing listens there
        with pytest.raises(VitcoreError, match=rf"model\.pretrained: {REPO} is not in the Hugging Face cache and the "
                                               rf"hub at {endpoint} cannot be reached .*hf download {REPO}"):
            _build()
        assert hub.requests == []
