"""`vitcore prune` on a real run of each model family: the shares removed (parameters counted
by hand), a new version with lineage that rebuilds, exports (checked in onnxruntime), shows its
attention and fine-tunes or resumes through the engine."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch

from vitcore.api import eval_transform, load_run_model, load_splits, normalize, read_json, sha256, vit_view
from vitcore.testing import run_cli
from vitcore_prune.command import prune_run
from vitcore_prune.surgery import describe

#: Per family: (token width, head size, MLP width); every block has 4 heads, q/k/v with biases.
GEOMETRY = {"torchvision": (32, 8, 128), "timm": (32, 8, 128), "hf": (32, 8, 64)}


def hand_count(family: str, parameters: int, heads_removed: int, channels_removed: int, blocks: int = 2) -> int:
    """Parameters left once each block loses that many heads and MLP channels, counted by hand:
    a head is 3 projections of (head size x width) weights plus head-size biases, and a
    head-size x width slice of the output projection; a channel is a row and a bias of the
    first MLP layer and a column of the second."""
    width, head, _ = GEOMETRY[family]
    per_head = 3 * head * width + 3 * head + head * width
    per_channel = width + 1 + width
    return parameters - blocks * (heads_removed * per_head + channels_removed * per_channel)


def _val_images(run_dir):
    loaded = load_run_model(run_dir)
    splits = load_splits(read_json(run_dir / "spec.json"))
    pre = loaded.preprocessing
    images = normalize(torch.stack([eval_transform(pre)(image) for image, _ in splits.val]), pre)
    return loaded, images


def test_prune_removes_the_share_asked_and_the_version_rebuilds_and_exports(family, source):
    before = read_json(source / "summary.json")["parameters"]
    result = prune_run(source, heads=0.25, mlp=0.5)
    pruned = result["run_dir"]
    assert pruned == source.parent / "v2"
    _, _, mlp_width = GEOMETRY[family]
    summary = read_json(pruned / "summary.json")
    assert summary["parameters"] == hand_count(family, before, 1, mlp_width // 2) == result["pruning"]["parameters_after"]
    assert summary["status"] == "completed" and summary["epochs_completed"] == 0
    lineage = summary["lineage"]
    assert lineage["source_run"] == {"name": family, "version": "v1", "path": str(source)}
    assert lineage["sha256"] == sha256(source / "checkpoints" / "best.pt")
    facts = summary["meta"]["pruning"]
    assert (facts["heads_before"], facts["heads_after"], facts["mlp_before"], facts["mlp_after"]) == (
        4, 3, mlp_width, mlp_width // 2)

    # Rebuilt from spec.json alone: the `pruned` builder, every block narrower, the view says 3 heads.
    spec = read_json(pruned / "spec.json")
    assert spec["model"]["type"] == "pruned" and spec["model"]["base"]["type"] == read_json(
        source / "spec.json")["model"]["type"]
    loaded, images = _val_images(pruned)
    assert sum(p.numel() for p in loaded.model.parameters()) == summary["parameters"]
    assert [(b.num_heads, b.hidden) for b in describe(loaded.model)] == [(3, mlp_width // 2)] * 2
    view = vit_view(loaded.model)
    assert view.num_heads == 3
    maps = view.capture_attention(images[:2])
    assert [m.shape for m in maps] == [(2, 3, 17, 17)] * 2
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 3, 17))

    # The export the version made at once was verified in onnxruntime; check it again here.
    record = json.loads((pruned / "exports" / "onnx.json").read_text())
    assert record["verification"]["max_abs_diff"] <= 1e-4 and record["verification"]["top1_agreement"] == 1.0
    with torch.inference_mode():
        reference = loaded.model(images).numpy()
    sess = onnxruntime.InferenceSession(str(pruned / "exports" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"images": images.numpy()})[0]
    np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
    assert (logits.argmax(1) == reference.argmax(1)).all()


def test_the_pruned_weights_are_the_source_weights_sliced(family, source):
    """What the version saved equals what model.init_from makes of the source checkpoint, and the
    kept heads' and channels' weights are the source's own."""
    from vitcore.api import ModelContext, resolve_component

    pruned = prune_run(source, heads=0.25, mlp=0.5, criterion="magnitude")["run_dir"]
    spec = read_json(pruned / "spec.json")["model"]
    saved = torch.load(pruned / "checkpoints" / "best.pt", weights_only=True)["model"]
    source_state = torch.load(source / "checkpoints" / "best.pt", weights_only=True)["model"]
    entry = {k: v for k, v in spec.items() if k != "init_from"}
    model = resolve_component(entry, "models", "model").instantiate().build(
        ModelContext(num_classes=3, class_names=["blue", "green", "red"], load_pretrained=False))
    mapped = model.vitcore_source_state(source_state)
    assert set(mapped) == set(saved)
    for name, tensor in saved.items():
        assert torch.equal(mapped[name], tensor), name
    changed = [name for name in saved if saved[name].shape != source_state[name].shape]
    # Per block: the tensors carrying heads (q/k/v weights and biases, the output projection) and channels.
    assert len(changed) == 2 * ({"hf": 7}.get(family, 3) + 3)


def test_a_pruned_version_resumes_into_fine_tuning(family, source):
    pruned = prune_run(source, heads=0.25, mlp=0.5)["run_dir"]
    resumed = run_cli("resume", str(pruned), "--set", "train.epochs=1")
    assert resumed.returncode == 0, resumed.stderr
    summary = read_json(pruned / "summary.json")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1
    assert summary["lineage"]["source_run"]["version"] == "v1"
    assert (pruned / "checkpoints" / "last.pt").is_file()
    assert load_run_model(pruned).model is not None


def test_fine_tuning_epochs_train_through_the_engine_and_resume(source_runs, tmp_path):
    import shutil

    source = shutil.copytree(source_runs["torchvision"], tmp_path / "runs" / "torchvision" / "v1")
    done = run_cli("prune", str(source), "--heads", "0.25", "--mlp", "0.5", "--finetune-epochs", "1")
    assert done.returncode == 0, done.stderr
    pruned = source.parent / "v2"
    assert f"Pruned {source} -> {pruned}: heads 4 -> 3 per block, MLP channels 128 -> 64 per block" in done.stdout
    summary = read_json(pruned / "summary.json")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1
    assert summary["lineage"]["init_from"] == str(source) and summary["lineage"]["source_run"]["version"] == "v1"
    spec = read_json(pruned / "spec.json")
    assert spec["train"]["lr"] == read_json(source / "spec.json")["train"]["lr"]
    assert spec["train"]["warmup_epochs"] == 0
    records = [json.loads(line) for line in (pruned / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1]

    more = run_cli("resume", str(pruned), "--set", "train.epochs=2")
    assert more.returncode == 0, more.stderr
    summary = read_json(pruned / "summary.json")
    assert summary["epochs_completed"] == 2 and summary["resumed"][-1]["changed"] == {"train.epochs": [1, 2]}
    assert summary["lineage"]["source_run"]["version"] == "v1"
    assert json.loads((pruned / "exports" / "onnx.json").read_text())["verification"]["top1_agreement"] == 1.0
