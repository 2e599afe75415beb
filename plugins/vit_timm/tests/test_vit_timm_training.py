"""timm_vit and timm's augmentations through the real engine; a run's checkpoint as the next one's weights."""

from __future__ import annotations

import torch
from vitcore_vit_timm.models import TimmViT
from vitcore_vit_timm.options import TimmViTOptions

from vitcore.api import ModelContext
from vitcore.testing import check_model_builder, train_spec

MODEL = {"type": "timm_vit", "name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8, "depth": 1,
         "embed_dim": 32, "num_heads": 2}


def test_a_run_with_timm_augmentations_trains_and_its_checkpoint_seeds_a_fine_tune(tmp_path, image_folder):
    spec = {
        "name": "timm",
        "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(image_folder(tmp_path / "data")), "val_fraction": 0.34},
        "model": dict(MODEL),
        "augmentations": [{"type": "random_resized_crop"}, {"type": "timm_rand_augment"}, {"type": "timm_mixup"},
                          {"type": "timm_random_erasing"}],
        # 12 training images in batches of 5 (the last is dropped): odd batches, which timm's Mixup cannot pair.
        "train": {"epochs": 2, "batch_size": 5, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0,
                  "log_every_steps": 1},
        "sinks": [],
        "visualizers": [],
        "exporters": [{"type": "safetensors"}],
    }
    result = train_spec(spec)
    summary = result.summary
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2 and summary["steps"] == 4
    best = result.run_dir / "checkpoints" / "best.pt"
    assert best.is_file() and (result.run_dir / "exports" / "model.safetensors").is_file()

    # Evaluate/export rebuild the bare architecture and load the checkpoint into it.
    classes = summary["classes"]
    options = TimmViTOptions(**{k: v for k, v in MODEL.items() if k != "type"})
    state = torch.load(best, weights_only=True)["model"]
    rebuilt = TimmViT(options).build(ModelContext(len(classes), classes, load_pretrained=False))
    rebuilt.load_state_dict(state)

    # The run's checkpoint is a timm checkpoint: fine-tune it on two classes, linear probe.
    tuned = TimmViT(options.model_copy(update={"weights": str(best), "finetune": "linear_probe"}))
    model = tuned.build(ModelContext(2, ["a", "b"]))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if not k.startswith("head."))
    assert model.head.out_features == 2 and {n for n, p in model.named_parameters() if p.requires_grad} == {
        "head.weight", "head.bias"}


def test_timm_vit_keeps_the_model_builder_contract(tiny):
    model = check_model_builder(TimmViT, tiny)
    assert model.num_classes == 2  # the first class count the kit builds
    check_model_builder(TimmViT, {**tiny, "name": "deit_tiny_distilled_patch16_224", "layer_decay": 0.75,
                                  "finetune": "freeze_blocks", "freeze_blocks": 1})
