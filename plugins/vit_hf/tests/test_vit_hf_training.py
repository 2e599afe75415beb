"""hf_vit through the real engine, exported with hf_pretrained and reloaded by transformers alone."""

from __future__ import annotations

import json

import torch
from PIL import Image
from transformers import AutoImageProcessor, ViTForImageClassification
from vitcore_vit_hf.export import HFPretrainedExporter
from vitcore_vit_hf.models import HFViT, HFViTOptions

from vitcore.api import ExportContext, ModelContext, eval_transform
from vitcore.testing import train_spec


def test_a_run_trains_and_exports_a_folder_transformers_loads(tmp_path, tiny, image_folder):
    spec = {
        "name": "hf",
        "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(image_folder(tmp_path / "data")), "val_fraction": 0.34},
        "model": {"type": "hf_vit", **tiny},
        "augmentations": [],
        "train": {"epochs": 2, "batch_size": 4, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0,
                  "log_every_steps": 1},
        "sinks": [],
        "visualizers": [],
        "exporters": [{"type": "hf_pretrained"}],
    }
    result = train_spec(spec)
    summary = result.summary
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    folder = result.run_dir / "exports" / "hf"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert sorted(summary["exports"]) == [str(folder / n) for n in names]
    # The exporter's folder, and what vitcore writes after any export (hashes, model card): nothing temporary.
    assert sorted(p.name for p in folder.parent.iterdir()) == ["MODEL_CARD.md", "hf", "manifest.json"]

    exported = ViTForImageClassification.from_pretrained(folder).eval()
    classes = summary["classes"]
    assert exported.config.id2label == dict(enumerate(classes))

    # The exported weights are the run's best weights.
    best = torch.load(result.run_dir / "checkpoints" / "best.pt", weights_only=True)
    builder = HFViT(HFViTOptions(**tiny))
    model = builder.build(ModelContext(num_classes=len(classes), class_names=classes))
    model.load_state_dict(best["model"])
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(exported(pixel_values=images).logits, model.eval()(images))

    # The exported image processor prepares an image as vitcore's evaluation does.
    pre = builder.preprocessing()
    photo = Image.fromarray((torch.rand(30, 45, 3) * 255).to(torch.uint8).numpy())
    ours = (eval_transform(pre)(photo).float() / 255 - 0.5) / 0.5
    theirs = AutoImageProcessor.from_pretrained(folder)(images=photo, return_tensors="pt")["pixel_values"][0]
    assert theirs.shape == ours.shape == (3, 32, 32)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)
    assert json.loads((folder / "preprocessor_config.json").read_text())["crop_size"] == {"height": 32, "width": 32}


def test_exporting_again_replaces_the_folder_whole(tmp_path, tiny):
    classes = ["a", "b"]
    builder = HFViT(HFViTOptions(**tiny))
    ctx = ExportContext(run_dir=tmp_path, model=builder.build(ModelContext(2, classes)).eval(), classes=classes,
                        preprocessing=builder.preprocessing(), spec={"model": {"type": "hf_vit"}})
    stale = tmp_path / "exports" / "hf" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier export")
    files = HFPretrainedExporter().export(ctx)
    assert [p.name for p in files] == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert not stale.exists() and [p.name for p in (tmp_path / "exports").iterdir()] == ["hf"]


def test_a_run_prints_neither_transformers_loss_notice_nor_a_shard_bar(tmp_path, tiny, image_folder):
    """Tracing the graph for TensorBoard reads every module's attributes, and transformers then logged
    "loss_type=None ... ForCausalLMLoss"; save_pretrained drew "Writing model shards" for one file."""
    from vitcore.testing import run_cli, write_spec

    spec = write_spec(tmp_path / "spec.json", {
        "name": "hf", "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(image_folder(tmp_path / "data")), "val_fraction": 0.34},
        "model": {"type": "hf_vit", **tiny},
        "train": {"epochs": 1, "batch_size": 4, "num_workers": 0},
        "sinks": [{"type": "tensorboard", "log_graph": True}], "visualizers": [],
        "exporters": [{"type": "hf_pretrained"}],
    })
    done = run_cli("run", str(spec), env={"TQDM_POSITION": "-1"})  # bars drawn even without a terminal
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "hf" / "v1" / "tb").is_dir()
    assert (tmp_path / "runs" / "hf" / "v1" / "exports" / "hf" / "model.safetensors").is_file()
    out = done.stdout + done.stderr
    assert "loss_type" not in out and "ForCausalLMLoss" not in out
    assert "Writing model shards" not in out
