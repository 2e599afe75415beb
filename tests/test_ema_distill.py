"""train.ema (a moving average of the weights beside them) and distill (a student learning from an
earlier run's model), through real runs."""

from __future__ import annotations

import json

import pytest
import torch

from vitcore.engine.trainer import train
from vitcore.errors import SpecError
from vitcore.spec import load_dict
from vitcore.testing import tiny_spec


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ema_is_evaluated_each_epoch_checkpointed_and_chooses_best(tmp_path):
    spec = tiny_spec(tmp_path, epochs=3, ema={"decay": 0.9})
    result = train(load_dict(spec))
    last = torch.load(result.run_dir / "checkpoints" / "last.pt", weights_only=True)
    ema = last["ema"]["module"]
    assert last["ema"]["updates"] == result.summary["steps"], "one update per optimizer step"
    assert any(not torch.equal(ema[k], last["model"][k]) for k in last["model"]), "the average differs from the weights"
    epochs = [r for r in _records(result.run_dir) if r["event"] == "epoch"]
    assert all("ema_val_acc1" in r and "ema_val_loss" in r for r in epochs)
    best = torch.load(result.run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["weights"] == "ema"
    chosen = max(epochs, key=lambda r: r["ema_val_acc1"])
    assert best["epoch"] == chosen["epoch"] and best["value"] == chosen["ema_val_acc1"]
    if best["epoch"] == 3:  # the last epoch's average is what last.pt holds too
        assert all(torch.equal(best["model"][k], ema[k]) for k in ema)


def test_ema_raw_weights_decide_when_asked(tmp_path):
    spec = tiny_spec(tmp_path, epochs=2, ema={"decay": 0.9, "best_follows_ema": False})
    result = train(load_dict(spec))
    best = torch.load(result.run_dir / "checkpoints" / "best.pt", weights_only=True)
    epochs = [r for r in _records(result.run_dir) if r["event"] == "epoch"]
    assert best["weights"] == "raw" and best["value"] == max(r["val_acc1"] for r in epochs)


@pytest.fixture
def fixed_teacher(tmp_path):
    """A run whose model predicts class 0 ('blue') for every image, whatever it sees."""
    result = train(load_dict(tiny_spec(tmp_path / "teacher", epochs=1)))
    for name in ("best.pt", "last.pt"):
        path = result.run_dir / "checkpoints" / name
        ckpt = torch.load(path, weights_only=True)
        ckpt["model"]["heads.head.weight"].zero_()
        ckpt["model"]["heads.head.bias"].copy_(torch.tensor([20.0, 0.0, 0.0]))
        torch.save(ckpt, path)
    return result.run_dir


def _share_predicted_as_first_class(run_dir) -> float:
    confusion = [r for r in _records(run_dir) if r["event"] == "epoch"][-1]["confusion"]
    return sum(row[0] for row in confusion) / sum(map(sum, confusion))


def test_a_student_follows_its_teacher(tmp_path, fixed_teacher):
    plain = train(load_dict(tiny_spec(tmp_path / "plain", epochs=4)))
    spec = tiny_spec(tmp_path / "student", epochs=4)
    spec["distill"] = {"teacher": str(fixed_teacher), "weight": 1.0, "kind": "soft", "temperature": 1.0}
    student = train(load_dict(spec))
    assert _share_predicted_as_first_class(plain.run_dir) < 0.6, "without a teacher it learns the colours"
    assert _share_predicted_as_first_class(student.run_dir) > 0.9, "with it, it predicts what the teacher does"
    saved = torch.load(student.run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert saved.keys() == torch.load(plain.run_dir / "checkpoints" / "best.pt", weights_only=True)["model"].keys(), \
        "the teacher is never saved into the student"


def test_a_teacher_with_other_classes_is_refused_before_the_run_folder_exists(tmp_path, fixed_teacher):
    from vitcore.testing import make_image_folder

    spec = tiny_spec(tmp_path / "other", epochs=1)
    make_image_folder(tmp_path / "two", classes=("red", "green"))
    spec["data"]["root"] = str(tmp_path / "two")
    spec["distill"] = {"teacher": str(fixed_teacher)}
    with pytest.raises(SpecError, match="distill.teacher: .* classes"):
        train(load_dict(spec))
    assert not (tmp_path / "other" / "runs" / "tiny").exists()
