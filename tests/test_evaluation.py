"""Honest evaluation (issue 16): the test split evaluated at the end of a run with full metrics,
`vitcore evaluate` keeping its results in the run, files shared by two splits reported.

One real run (`vitcore run` in a child) on an imagefolder with train/val/test, whose test split
holds two blue pictures filed as red (sure mistakes) and a link to a training file (a leak).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from vitcore.testing import TINY_VIT, make_image_folder, run_cli, write_spec

CLASSES = ["blue", "green", "red"]


def _dataset_root(root: Path) -> Path:
    make_image_folder(root / "train", per_class=8, seed=0)
    make_image_folder(root / "val", per_class=3, seed=1)
    make_image_folder(root / "test", per_class=4, seed=2)
    blues = make_image_folder(root.parent / "extra", classes=("blue",), per_class=2, seed=3)
    for i, png in enumerate(sorted((blues / "blue").iterdir())):
        shutil.copy(png, root / "test" / "red" / f"filed_wrong_{i}.png")
    os.symlink(root / "train" / "green" / "0.png", root / "test" / "green" / "leaked.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, dict]:
    tmp = tmp_path_factory.mktemp("evaluation")
    root = _dataset_root(tmp / "data")
    spec = {
        "name": "evaltiny", "output_dir": str(tmp / "runs"),
        "data": {"type": "imagefolder", "root": str(root)},
        "model": dict(TINY_VIT), "augmentations": [],
        "train": {"epochs": 3, "batch_size": 4, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0, "seed": 0},
        "sinks": [{"type": "jsonl"}], "visualizers": [], "exporters": [],
    }
    result = run_cli("run", str(write_spec(tmp / "spec.json", spec)), env={"VITCORE_CACHE": str(tmp / "cache")})
    assert result.returncode == 0, result.stderr
    run_dir = tmp / "runs" / "evaltiny" / "v1"
    return tmp, run_dir, json.loads((run_dir / "summary.json").read_text())


def _direct(run_dir: Path, files: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-predict ``files`` with the run's best model by hand: (probabilities, labels)."""
    from vitcore.api import eval_transform, load_rgb, load_run_model, normalize

    loaded = load_run_model(run_dir)
    transform = eval_transform(loaded.preprocessing)
    batch = torch.stack([transform(load_rgb(path)) for path, _ in files])
    with torch.no_grad():
        probs = loaded.model(normalize(batch, loaded.preprocessing)).float().softmax(dim=1)
    return probs, torch.tensor([label for _, label in files])


def _test_files(root: Path) -> list[tuple[str, int]]:
    return [(str(p), CLASSES.index(folder.name)) for folder in sorted((root / "test").iterdir())
            for p in sorted(folder.iterdir())]


def _hand_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    predicted = probs.argmax(dim=1)
    per_class = {}
    for c, name in enumerate(CLASSES):
        tp = int(((predicted == c) & (labels == c)).sum())
        fp = int(((predicted == c) & (labels != c)).sum())
        fn = int(((predicted != c) & (labels == c)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    confidence = probs.max(dim=1).values
    correct = (predicted == labels).double()
    ece = 0.0
    for b in range(16):  # equal-width bins [b/15, (b+1)/15); a confidence of exactly 1 on its own
        inside = (confidence >= b / 15) & (confidence < (b + 1) / 15)
        if inside.any():
            ece += float(inside.sum()) / len(labels) * abs(float(correct[inside].mean())
                                                          - float(confidence[inside].double().mean()))
    return {"per_class": per_class, "acc1": float(correct.mean()), "ece": ece,
            "wrong": int((predicted != labels).sum()), "predicted": predicted}


def test_a_run_with_a_test_split_reports_its_test_metrics(trained):
    tmp, run_dir, summary = trained
    test = summary.get("test")
    assert test, "summary.json has no test evaluation (vitcore/engine/finish.py must call evaluate_test_split)"
    files = _test_files(tmp / "data")
    hand = _hand_metrics(*_direct(run_dir, files))
    assert test["images"] == len(files) == 15  # 4 per class, 2 filed wrong, 1 leaked
    assert test["acc1"] == pytest.approx(hand["acc1"], abs=1e-6)
    for name in CLASSES:
        for key in ("precision", "recall", "f1"):
            assert test["per_class"][name][key] == pytest.approx(hand["per_class"][name][key], abs=1e-5), (name, key)
        assert test["per_class"][name]["support"] == hand["per_class"][name]["support"]
    supports = [hand["per_class"][n]["support"] for n in CLASSES]
    for key in ("precision", "recall", "f1"):
        values = [hand["per_class"][n][key] for n in CLASSES]
        assert test["weighted"][key] == pytest.approx(sum(v * s for v, s in zip(values, supports)) / sum(supports),
                                                      abs=1e-5)
        assert test["macro"][key] == pytest.approx(sum(values) / 3, abs=1e-5)  # every class has images
    assert test["calibration"]["ece"] == pytest.approx(hand["ece"], abs=1e-5)
    assert sum(map(sum, test["confusion"])) == 15 and test["classes"] == CLASSES
    assert test["mistakes"] == hand["wrong"] and len(test["confident_mistakes"]) == min(16, hand["wrong"])
    confidences = [m["confidence"] for m in test["confident_mistakes"]]
    assert confidences == sorted(confidences, reverse=True)
    for mistake in test["confident_mistakes"]:
        assert mistake["path"] == files[mistake["index"]][0] and mistake["true"] != mistake["predicted"]

    kept = json.loads((run_dir / "evaluations" / "test.json").read_text())
    assert kept["per_class"] == test["per_class"] and test["file"] == "evaluations/test.json"
    for picture in kept["pictures"].values():
        assert (run_dir / "evaluations" / picture).stat().st_size > 2000
    assert set(kept["pictures"]) == {"reliability", "confusion"} | ({"mistakes"} if hand["wrong"] else set())


def test_a_file_in_two_splits_is_reported(trained, tmp_path):
    tmp, run_dir, summary = trained
    leaked = str(tmp / "data" / "test" / "green" / "leaked.png")
    assert any("train and the test split" in w and leaked in w for w in summary["data"].get("warnings", []))

    from vitcore.data_loading import load_splits

    images = make_image_folder(tmp_path / "images", per_class=3)
    rows = ["path,label,split"] + [f"images/{c}/{i}.png,{c},{'train' if i < 2 else 'val'}"
                                   for c in CLASSES for i in range(3)]
    rows.append("images/red/0.png,red,test")  # the same file as a training row
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_splits({"data": {"type": "csv", "path": str(tmp_path / "list.csv"), "split_column": "split"}})
    shared = str(images / "red" / "0.png")
    messages = [str(w.message) for w in caught if "both the train and the test split" in str(w.message)]
    assert len(messages) == 1 and shared in messages[0]
    assert any(shared in w for w in splits.info["warnings"])
    assert not any("val split" in m for m in messages)  # train/val here share nothing


def test_evaluate_reports_files_the_run_trained_on(trained):
    tmp, run_dir, _ = trained
    leaked = str(tmp / "data" / "test" / "green" / "leaked.png")
    result = run_cli("evaluate", str(run_dir), "--data", str(tmp / "data"), "--split", "test", "--name", "leak",
                     env={"VITCORE_CACHE": str(tmp / "cache")})
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "the run's" in line or "in both" in line]
    assert len(warned) == 1 and leaked in warned[0], result.stderr
    assert "1 file(s) are in both the run's train split and the evaluated images" in warned[0]
    kept = json.loads((run_dir / "evaluations" / "leak.json").read_text())
    assert len(kept["warnings"]) == 1 and leaked in kept["warnings"][0]

    clean = run_cli("evaluate", str(run_dir), "--data", str(tmp / "data" / "val"), "--name", "clean_val", "--json",
                    env={"VITCORE_CACHE": str(tmp / "cache")})
    assert clean.returncode == 0 and "in both" not in clean.stderr
    assert "warnings" not in json.loads(clean.stdout)


def test_evaluate_writes_each_evaluation_into_the_run(trained, tmp_path):
    tmp, run_dir, _ = trained
    env = {"VITCORE_CACHE": str(tmp / "cache")}
    val = run_cli("evaluate", str(run_dir), "--split", "val", env=env)
    assert val.returncode == 0, val.stderr
    assert "top-1" in val.stdout and "macro" in val.stdout and "ECE" in val.stdout
    record = json.loads((run_dir / "evaluations" / "val.json").read_text())
    assert record["images"] == 9 and record["source"] == {"kind": "split", "split": "val"}
    assert (run_dir / "evaluations" / "val_reliability.png").stat().st_size > 2000

    holdout = make_image_folder(tmp_path / "holdout", classes=("red", "blue"), per_class=3, seed=5)
    folder = run_cli("evaluate", str(run_dir), "--data", str(holdout), "--json", env=env)
    assert folder.returncode == 0, folder.stderr
    printed = json.loads(folder.stdout)
    assert printed["images"] == 6 and printed["classes"] == CLASSES
    assert printed["per_class"]["green"]["support"] == 0
    assert json.loads((run_dir / "evaluations" / "holdout.json").read_text())["acc1"] == printed["acc1"]

    # Any data set a run accepts, through a spec file's data entry: a csv manifest with a test split,
    # its classes in another order than the run's (labels are matched by name).
    images = make_image_folder(tmp_path / "images", classes=("red", "green"), per_class=3, seed=6)
    rows = ["file,kind,part"] + [f"images/{c}/{i}.png,{c},{['train', 'val', 'test'][i]}" for c in ("red", "green")
                                 for i in range(3)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "holdout.yaml").write_text("data:\n  type: csv\n  path: list.csv\n  path_column: file\n"
                                           "  label_column: kind\n  split_column: part\n")
    spec = run_cli("evaluate", str(run_dir), "--data-spec", str(tmp_path / "holdout.yaml"), "--json", env=env)
    assert spec.returncode == 0, spec.stderr
    kept = json.loads((run_dir / "evaluations" / "holdout_test.json").read_text())
    assert kept["images"] == 2 and kept["source"]["split"] == "test" and kept["source"]["kind"] == "data_spec"
    probs, labels = _direct(run_dir, [(str(images / c / "2.png"), CLASSES.index(c)) for c in ("green", "red")])
    assert kept["confusion"] == [[int(((labels == t) & (probs.argmax(1) == p)).sum()) for p in range(3)]
                                 for t in range(3)]

    pytest.importorskip("vitcore_viz_attention")  # the report is the viz plugin's
    report = run_cli("report", str(run_dir), env=env)
    assert report.returncode == 0, report.stderr
    page = (run_dir / "report.html").read_text()
    section = page[page.index("<h2>Evaluations</h2>"):]
    for name in ("val", "holdout", "holdout_test"):
        assert f"<h3>{name}</h3>" in section
    assert "macro f1" in section and section.count("data:image/png;base64") >= 6


def test_bad_evaluate_sources_name_what_to_fix(trained, tmp_path):
    tmp, run_dir, _ = trained
    env = {"VITCORE_CACHE": str(tmp / "cache")}
    (tmp_path / "none.json").write_text(json.dumps({"model": {"type": "torchvision_vit"}}))
    (tmp_path / "noroot.json").write_text(json.dumps({"data": {"type": "imagefolder"}}))
    (tmp_path / "typo.json").write_text(json.dumps({"data": {"type": "imagefolder", "root": ".", "val_fractoin": 1}}))
    for name, field in (("none", "data: Field required"), ("noroot", "data.root"), ("typo", "val_fractoin")):
        result = run_cli("evaluate", str(run_dir), "--data-spec", str(tmp_path / f"{name}.json"), env=env)
        assert result.returncode == 2, (name, result.stderr)
        assert field in result.stderr and str(tmp_path / f"{name}.json") in result.stderr
        assert "Traceback" not in result.stderr

    only_val = make_image_folder(tmp_path / "flat", per_class=3)
    (tmp_path / "flat.json").write_text(json.dumps({"data": {"type": "imagefolder", "root": str(only_val)}}))
    missing = run_cli("evaluate", str(run_dir), "--data-spec", str(tmp_path / "flat.json"), "--split", "test", env=env)
    assert missing.returncode == 1 and "no test split" in missing.stderr


def test_predict_never_imports_the_metrics_library(trained):
    """torchmetrics (and what it pulls in) is imported by the evaluation only, so `vitcore predict`
    stays as fast to start as before."""
    import subprocess
    import sys

    tmp, run_dir, _ = trained
    image = str(tmp / "data" / "val" / "red" / "0.png")
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "vitcore", "predict", str(run_dir), image],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported and "vitcore.inference" in imported
    assert not {name for name in imported if name.split(".")[0] in ("torchmetrics", "lightning_utilities")}


def test_metrics_on_known_logits():
    from vitcore.evaluation import compute_metrics

    # 3 classes; true 0,0,1,1,2,2; predicted 0,1,1,1,0,2 with confidences set by the logits.
    logits = torch.tensor([[4.0, 0, 0], [0, 3, 0], [0, 5, 0], [0, 2, 0], [6, 0, 0], [0, 0, 1]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    r = compute_metrics(logits, labels, ["a", "b", "c"])
    assert r["acc1"] == pytest.approx(4 / 6)
    assert r["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert r["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert r["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert [(m["index"], m["true"], m["predicted"]) for m in r["confident_mistakes"]] == [(4, "c", "a"), (1, "a", "b")]
    assert r["acc5"] is None and sum(b["count"] for b in r["calibration"]["bins"]) == 6
