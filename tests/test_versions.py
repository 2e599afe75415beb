"""Model versions: runs compare, runs tag, runs verify and the model card, on run folders built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitcore.errors import VitcoreError
from vitcore.hashing import sha256
from vitcore.testing import run_cli
from vitcore.versions import compare_runs, flatten, model_card, tag_run, verify_run, write_model_card

CLASSES = ["blue", "green", "red"]
PRE = {"image_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear", "crop_pct": 0.875}


def _run(root: Path, version: int, lr: float = 0.003, best: float = 0.9, flips: bool = False,
         summary: dict | None = None) -> Path:
    """A finished run's files as the engine and the safetensors exporter leave them (no training)."""
    run_dir = root / "tiny" / f"v{version}"
    (run_dir / "exports").mkdir(parents=True)
    augmentations = [{"type": "random_resized_crop", "scale": [0.5, 1.0]}]
    augmentations += [{"type": "horizontal_flip", "p": 0.5}] if flips else []
    spec = {"name": "tiny", "data": {"type": "imagefolder", "root": "data"},
            "model": {"type": "torchvision_vit", "depth": 1}, "augmentations": augmentations,
            "train": {"epochs": 2, "lr": lr}}
    (run_dir / "spec.json").write_text(json.dumps(spec))
    (run_dir / "summary.json").write_text(json.dumps({
        "name": "tiny", "version": f"v{version}", "status": "completed", "best_metric": "val_acc1",
        "best_value": best, "best_epoch": 2, "epochs_completed": 2, "parameters": 19619, "classes": CLASSES,
        "preprocessing": PRE, **(summary or {})}))
    weights = run_dir / "exports" / "model.safetensors"
    weights.write_bytes(b"weights of v%d" % version)
    (run_dir / "exports" / "model.json").write_text(json.dumps(
        {"classes": CLASSES, "weights": {"file": weights.name, "format": "safetensors", "sha256": sha256(weights)}}))
    return run_dir


def test_flatten_keys_components_by_type_not_by_place():
    spec = {"train": {"lr": 0.1, "betas": [0.9, 0.99]}, "sinks": [], "tags": {}, "name": "x",
            "augmentations": [{"type": "random_resized_crop", "scale": [0.5, 1.0]}, {"type": "mixup"},
                              {"type": "mixup", "alpha": 0.2}]}
    assert flatten(spec) == {
        "train.lr": 0.1, "train.betas": [0.9, 0.99], "sinks": [], "tags": {}, "name": "x",
        "augmentations": ["random_resized_crop", "mixup", "mixup"],
        "augmentations[random_resized_crop].scale": [0.5, 1.0], "augmentations[mixup#2].alpha": 0.2}


def test_compare_shows_the_spec_fields_that_differ_and_the_key_metrics(tmp_path):
    a, b = _run(tmp_path, 1), _run(tmp_path, 2, lr=0.01, best=0.8, flips=True)
    result = compare_runs([a, b])
    assert [r["run"] for r in result["runs"]] == ["tiny/v1", "tiny/v2"]
    assert list(result["spec"].items()) == [  # grouped by component, the list's order beside its entries
        ("augmentations", [["random_resized_crop"], ["random_resized_crop", "horizontal_flip"]]),
        ("augmentations[horizontal_flip].p", [None, 0.5]),
        ("train.lr", [0.003, 0.01])]
    assert result["metrics"]["best_value"] == [0.9, 0.8] and result["metrics"]["status"] == ["completed"] * 2

    as_json = run_cli("runs", "compare", str(a), str(b), "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == json.loads(json.dumps(result))
    table = run_cli("runs", "compare", str(a), str(tmp_path / "tiny"))  # runs/<name>: its latest version
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["tiny/v1", "tiny/v2"]
    spec_rows = lines[lines.index("spec (differing fields)") + 1:lines.index("metrics")]
    assert [row.split()[:2] for row in spec_rows] == [
        ["augmentations", '["random_resized_crop"]'], ["augmentations[horizontal_flip]"], ["p", "-"],
        ["train"], ["lr", "0.003"]]
    assert spec_rows[2].split() == ["p", "-", "0.5"] and spec_rows[4].split() == ["lr", "0.003", "0.01"]
    assert "curves" not in table.stdout, "runs without metrics.jsonl have no curves to draw"
    assert next(line for line in lines if "best_value" in line).split() == ["best_value", "0.9", "0.8"]
    alone = run_cli("runs", "compare", str(a))
    assert alone.returncode == 1 and "two or more" in alone.stderr


def test_tags_are_stored_in_the_run_and_listed(tmp_path):
    run_dir = _run(tmp_path, 1)
    assert tag_run(run_dir, "baseline") == ["baseline"]
    assert tag_run(run_dir, "baseline") == ["baseline"]
    with pytest.raises(VitcoreError, match="tag 'has space'"):
        tag_run(run_dir, "has space")
    with pytest.raises(VitcoreError, match="has no tag 'prod'"):
        tag_run(run_dir, "prod", remove=True)

    tagged = run_cli("runs", "tag", str(run_dir), "production")
    assert tagged.returncode == 0 and "baseline, production" in tagged.stdout
    assert json.loads((run_dir / "tags.json").read_text()) == {"tags": ["baseline", "production"]}
    rows = json.loads(run_cli("runs", "list", str(tmp_path), "--json").stdout)
    assert [(r["version"], r["tags"]) for r in rows] == [(1, ["baseline", "production"])]
    assert "baseline, production" in run_cli("runs", "list", str(tmp_path)).stdout
    assert json.loads(run_cli("runs", "show", str(run_dir)).stdout)["tags"] == ["baseline", "production"]
    untagged = run_cli("runs", "tag", str(run_dir), "baseline", "--remove")
    assert untagged.returncode == 0 and json.loads((run_dir / "tags.json").read_text()) == {"tags": ["production"]}


def test_concurrent_tagging_keeps_every_tag(tmp_path):
    import subprocess
    import sys

    run_dir = _run(tmp_path, 1)
    tags = [f"t{i}" for i in range(8)]
    procs = [subprocess.Popen([sys.executable, "-m", "vitcore", "runs", "tag", str(run_dir), t],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for t in tags]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert sorted(json.loads((run_dir / "tags.json").read_text())["tags"]) == sorted(tags)


def test_verify_names_a_changed_or_missing_file(tmp_path):
    run_dir = _run(tmp_path, 1)
    (run_dir / "exports" / "model.pt").write_bytes(b"no hash recorded")
    good = run_cli("runs", "verify", str(run_dir))
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == ["ok       exports/model.safetensors  (recorded in exports/model.json)",
                                        "no hash  exports/model.pt"]

    weights = run_dir / "exports" / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"!")
    tampered = run_cli("runs", "verify", str(run_dir))
    assert tampered.returncode == 1
    assert "MISMATCH exports/model.safetensors" in tampered.stdout
    assert "exports/model.safetensors (mismatch: model.json records sha256" in tampered.stderr

    weights.unlink()
    assert [c.status for c in verify_run(run_dir).checks] == ["missing"]
    (run_dir / "exports" / "model.json").unlink()
    with pytest.raises(VitcoreError, match="no exported file has a recorded SHA-256"):
        verify_run(run_dir)


def test_the_model_card_holds_data_metrics_preprocessing_lineage_and_hashes(tmp_path):
    source = _run(tmp_path, 1)
    lineage = {"init_from": str(source), "checkpoint": str(source / "checkpoints" / "best.pt"), "sha256": "ab" * 32,
               "source_classes": CLASSES, "new_head": [], "resized": ["encoder.pos_embedding"],
               "source_run": {"name": "tiny", "version": "v1", "path": str(source)}}
    run_dir = _run(tmp_path, 2, summary={"lineage": lineage, "data": {"root": "data"}})
    tag_run(run_dir, "candidate")
    path = write_model_card(run_dir, notes=["ONNX: checked."])
    card = path.read_text()
    assert path == run_dir / "exports" / "MODEL_CARD.md" and card.startswith("# Model card: tiny/v2")
    assert "Tags: candidate." in card and "Classes (3): blue, green, red" in card
    assert "- Provider: `imagefolder` with `{\"root\": \"data\"}`" in card
    assert "| best val_acc1 | 0.9000 (epoch 2) |" in card
    assert "Resize the short side to 37 px (bilinear, antialiased), centre-crop 32x32" in card
    assert f"Started from `{source}` (run tiny/v1)" in card and "resized: encoder.pos_embedding" in card
    assert "## Export checks\n\n- ONNX: checked." in card
    weights = run_dir / "exports" / "model.safetensors"
    assert f"| model.safetensors | {weights.stat().st_size} | `{sha256(weights)}` |" in card
    assert "Not started from an earlier vitcore run" in model_card(source)
