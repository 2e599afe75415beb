"""Pretrained weights downloaded from a Hugging Face hub served on 127.0.0.1 (vitcore.testing.LoopbackHub):
into the cache once, checked against the hub's hash, then read offline; and what offline,
unreachable and unknown hubs say."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
import torch
from vitcore_vit_timm.models import TimmViT
from vitcore_vit_timm.options import TimmViTOptions

from vitcore.api import ModelContext, VitcoreError
from vitcore.testing import LoopbackHub, make_image_folder, write_spec

DEFAULT_REPO = "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"  # timm's default weights for the name


def _build(options: dict, num_classes: int = 3) -> torch.nn.Module:
    return TimmViT(TimmViTOptions(**options)).build(ModelContext(num_classes, [f"c{i}" for i in range(num_classes)]))


def _weights(model, save_weights, path: Path) -> bytes:
    return save_weights(model, path).read_bytes()


def _assert_loaded(model: torch.nn.Module, source: torch.nn.Module) -> None:
    theirs = source.state_dict()
    for key, tensor in model.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(tensor, theirs[key]), key


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hf_hub_id_downloads_once_into_the_cache_checked_then_loads_offline(tmp_path, tiny, tiny_timm, save_weights,
                                                                           monkeypatch, capfd):
    source = tiny_timm(num_classes=5)
    data = _weights(source, save_weights, tmp_path / "w.safetensors")
    with LoopbackHub({"org/tiny-timm": {"model.safetensors": data}}) as hub:
        hub.serve_this_process(monkeypatch)
        model = _build({**tiny, "hf_hub_id": "org/tiny-timm"})
        _assert_loaded(model, source)
        assert hub.requests == [("HEAD", "/org/tiny-timm/resolve/main/model.safetensors")] * 2 + [
            ("GET", "/org/tiny-timm/resolve/main/model.safetensors")], "one check, then huggingface_hub's own"
        err = capfd.readouterr().err
        cache = tmp_path / "hf-cache"
        assert f"model.hf_hub_id: downloading org/tiny-timm model.safetensors from {hub.endpoint} into {cache}" in err

        # huggingface_hub's cache layout, the blob named by its SHA-256.
        repo = cache / "models--org--tiny-timm"
        commit = (repo / "refs" / "main").read_text()
        assert commit == hub.commits["org/tiny-timm"]
        blob = (repo / "snapshots" / commit / "model.safetensors").resolve()
        assert blob.parent == repo / "blobs" and blob.read_bytes() == data

        # Cached: no request at all, online or offline.
        _assert_loaded(_build({**tiny, "hf_hub_id": "org/tiny-timm"}), source)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        _assert_loaded(_build({**tiny, "hf_hub_id": "org/tiny-timm"}), source)
        assert len(hub.requests) == 3


def test_pretrained_true_downloads_timms_default_and_falls_back_to_pytorch_model_bin(tmp_path, tiny, tiny_timm,
                                                                                   save_weights, monkeypatch):
    source = tiny_timm(num_classes=5)
    data = _weights(source, save_weights, tmp_path / "pytorch_model.bin")
    with LoopbackHub({DEFAULT_REPO: {"pytorch_model.bin": data}}) as hub:
        hub.serve_this_process(monkeypatch)
        _assert_loaded(_build({**tiny, "pretrained": True}), source)
        assert hub.requests[0] == ("HEAD", f"/{DEFAULT_REPO}/resolve/main/model.safetensors"), "safetensors first"
        assert hub.downloads() == [f"/{DEFAULT_REPO}/resolve/main/pytorch_model.bin"]


def test_a_download_that_does_not_match_the_hubs_hash_is_deleted_and_refused(tmp_path, tiny, tiny_timm,
                                                                           save_weights, monkeypatch):
    data = _weights(tiny_timm(), save_weights, tmp_path / "w.safetensors")
    with LoopbackHub({"org/tiny-timm": {"model.safetensors": data}}, corrupt={"model.safetensors"}) as hub:
        hub.serve_this_process(monkeypatch)
        with pytest.raises(VitcoreError, match=r"model\.hf_hub_id: org/tiny-timm model\.safetensors: the downloaded "
                                               r"file's SHA-256 is [0-9a-f]{64}, but the hub says [0-9a-f]{64}; the "
                                               r"file was deleted from the cache\. Run the command again"):
            _build({**tiny, "hf_hub_id": "org/tiny-timm"})
    blobs = tmp_path / "hf-cache" / "models--org--tiny-timm" / "blobs"
    assert not [p for p in blobs.iterdir() if not p.name.endswith(".lock")], "nothing corrupt is left to be read"


def test_offline_unreachable_and_unknown_repos_say_what_to_do(tmp_path, tiny, monkeypatch):
    cache = tmp_path / "hf-cache"
    with pytest.raises(VitcoreError) as offline:  # the suite runs with HF_HUB_OFFLINE=1
        _build({**tiny, "hf_hub_id": "timm/not_cached"})
    message = str(offline.value)
    assert message.startswith("model.hf_hub_id: timm/not_cached is not in the Hugging Face cache and HF_HUB_OFFLINE "
                              "is set, which forbids downloading. The cache is " + str(cache))
    for part in (f"HF_HUB_CACHE={str(cache)!r}", "HF_HOME=", str(cache / "models--timm--not_cached"),
                 "model.safetensors or pytorch_model.bin", "unset HF_HUB_OFFLINE to download it",
                 "`hf download timm/not_cached --cache-dir DIR` and copy DIR/models--timm--not_cached into",
                 "set model.weights to a local weight file or folder"):
        assert part in message, part

    with LoopbackHub({}) as hub:
        hub.serve_this_process(monkeypatch)
        with pytest.raises(VitcoreError, match=rf"model\.pretrained: the Hugging Face hub at {hub.endpoint} has no "
                                               rf"model {DEFAULT_REPO} \(check the name"):
            _build({**tiny, "pretrained": True})

    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    with pytest.raises(VitcoreError) as unreachable:
        _build({**tiny, "hf_hub_id": "org/tiny-timm"})
    message = str(unreachable.value)
    assert message.startswith(f"model.hf_hub_id: org/tiny-timm is not in the Hugging Face cache and the hub at "
                              f"{endpoint} cannot be reached (")
    assert "check the network (or HF_ENDPOINT)" in message and "hf download org/tiny-timm" in message
    assert "set model.weights" in message


def _run_in_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``python -m vitcore ARGS`` with stderr on a pseudo-terminal, as a user sees it (progress bars
    draw only on a terminal); returns (exit code, stdout, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns, as a terminal has
    child = subprocess.Popen([sys.executable, "-m", "vitcore", *args], stdout=subprocess.PIPE, stderr=slave,
                             env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    stdout, _ = child.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(master)
    return child.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_vitcore_run_downloads_the_weights_with_huggingface_hubs_progress_bar(tmp_path, tiny, tiny_timm,
                                                                              save_weights):
    source = tiny_timm(num_classes=5)
    data = _weights(source, save_weights, tmp_path / "w.safetensors")
    spec = write_spec(tmp_path / "spec.json", {
        "name": "pretrained", "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(make_image_folder(tmp_path / "data")), "val_fraction": 0.34},
        "model": {"type": "timm_vit", **tiny, "hf_hub_id": "org/tiny-timm"},
        "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}, "sinks": [], "visualizers": [], "exporters": [],
    })
    cache = tmp_path / "child-cache"
    with LoopbackHub({"org/tiny-timm": {"model.safetensors": data}}) as hub:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(HF_ENDPOINT=hub.endpoint, HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "child-home"))
        code, stdout, stderr = _run_in_a_terminal(["run", str(spec)], env)
    assert code == 0, stderr[-3000:]
    assert f"downloading org/tiny-timm model.safetensors from {hub.endpoint}" in stderr
    bar = [line for line in stderr.replace("\r", "\n").splitlines() if "model.safetensors:" in line]
    assert bar and "100%" in bar[-1], stderr[-2000:]  # huggingface_hub's tqdm bar, drawn to the end
    assert hub.downloads() == ["/org/tiny-timm/resolve/main/model.safetensors"]
    summary = json.loads(next((tmp_path / "runs").glob("pretrained/v1/summary.json")).read_text())
    assert summary["status"] == "completed"
    assert (cache / "models--org--tiny-timm" / "refs" / "main").read_text() == hub.commits["org/tiny-timm"]
