"""The model and attention explorers' API on a real trained run, checked against the model itself."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

RUN = "/api/runs/shapes-done/v1"


def picture(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"), dtype=float)


def test_the_model_explorer_gives_the_tree_with_shapes_params_flops_and_blocks(finished_dashboard):
    view = finished_dashboard.json(f"{RUN}/model")
    assert view["source"] == "model_summary.json" and view["model"] == "VisionTransformer"
    assert view["geometry"]["grid"] == [4, 4] and view["geometry"]["tokens"] == 17
    assert view["blocks"] == ["encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1"]
    tree = view["tree"]
    assert tree["params"] == view["params"] > sum(c["params"] for c in tree["children"])  # + class token, positions
    encoder = next(c for c in tree["children"] if c["name"] == "encoder")
    layers = next(c for c in encoder["children"] if c["name"] == "encoder.layers")
    block = layers["children"][0]
    assert block["block"] == 0 and block["output_shape"] == [1, 17, 32] and block["flops"] > 0
    assert {c["short"] for c in block["children"]} >= {"ln_1", "self_attention", "mlp"}
    links = {kind: [p["name"] for p in pictures] for kind, pictures in view["block_pictures"].items()}
    assert links == {"attention": ["attention_entropy", "attention_distance", "attention_histograms"],
                     "fc": ["fc_histograms", "fc_heatmaps", "fc_spectra"]}


def test_the_attention_explorer_answers_with_the_models_own_prediction(finished_root, finished_dashboard):
    import torch

    from vitcore.api import load_run_model, normalize, vit_view

    info = finished_dashboard.json(f"{RUN}/attention")
    assert info["available"] and info["grid"] == [4, 4] and info["blocks"] == 2 and info["heads"] == 2
    assert info["classes"] == ["circle", "cross", "square"] and len(info["samples"]) == 8
    status, headers, body = finished_dashboard.request(f"{RUN}/attention/samples/3.png")
    assert status == 200 and headers["content-type"] == "image/png"
    sample = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
    assert sample.shape == (288, 288, 3) and sample.std() > 5

    answer = finished_dashboard.json(f"{RUN}/attention/map?sample=3&layer=1&head=0&row=2&col=1")
    assert answer["patch"] == [2, 1] and answer["query"] == "patch (row 2, column 1)"
    shown = picture(answer["image"])
    assert shown.shape == (288, 288, 3) and shown.std() > 10
    # Cyan outline around patch (2, 1): 72 px cells.
    assert (shown[144, 72 + 30] == [0, 255, 255]).all()

    # The same numbers straight from the model, through the same vit_view hook.
    loaded = load_run_model(finished_root / "shapes-done" / "v1")
    view = vit_view(loaded.model)
    from vitcore.api import read_json, validation_samples

    spec = read_json(finished_root / "shapes-done" / "v1" / "spec.json")
    image = validation_samples(spec, loaded.preprocessing, 8)[3][0]
    batch = normalize(image[None], loaded.preprocessing)
    with torch.no_grad():
        maps = view.capture_attention(batch)
        probabilities = loaded.model(batch).softmax(dim=1)[0]
    expected = maps[1][0, 0, 1 + 2 * 4 + 1, 1:].reshape(4, 4)
    assert np.allclose(answer["weights"], expected.numpy(), atol=1e-5)
    assert answer["share_on_patches"] == pytest.approx(float(expected.sum()), abs=1e-5)
    top = answer["prediction"][0]
    assert top["label"] == loaded.classes[int(probabilities.argmax())]
    assert top["probability"] == pytest.approx(float(probabilities.max()), abs=1e-5)
    assert sum(p["probability"] for p in answer["prediction"]) == pytest.approx(1.0, abs=1e-4)
    assert len(answer["stats"]["entropy"]) == 2 and answer["stats"]["uniform_entropy"] == pytest.approx(np.log(17),
                                                                                                        abs=1e-3)

    rollout = finished_dashboard.json(f"{RUN}/attention/map?sample=0&layer=rollout&head=mean")
    assert rollout["patch"] is None and rollout["query"] == "the class token"
    assert np.sum(rollout["weights"]) == pytest.approx(1.0, abs=1e-4)
    mean = finished_dashboard.json(f"{RUN}/attention/map?sample=0&layer=0&head=max&row=0&col=0")
    assert mean["head"] == "max"


@pytest.mark.parametrize("query, message", [
    ("sample=0&layer=0&row=4&col=0", "outside the model's 4x4 patch grid"),
    ("sample=0&layer=7", "layer must be a block from 0 to 1"),
    ("sample=0&layer=0&head=9", "head must be from 0 to 1"),
    ("sample=0&layer=rollout&head=1", "rollout combines the heads"),
    ("sample=99", "sample 99 does not exist"),
    ("sample=zero", "whole numbers"),
    ("sample=0&row=1", "whole numbers"),
])
def test_questions_the_explorer_cannot_answer_get_a_400_that_says_why(finished_dashboard, query, message):
    error = finished_dashboard.json(f"{RUN}/attention/map?{query}", expect=400)["error"]
    assert message in error


def test_a_model_no_plugin_describes_says_so(tmp_path, make_spec):
    """An MLP is no ViT: the explorer says no plugin gives it a view, instead of failing."""
    import torch

    import vitcore
    from vitcore.api import ModelBuilder, Options, Preprocessing
    from vitcore.testing import registered_plugin
    from vitcore.testing.engine import train_spec
    from vitcore_dashboard.attention import AttentionExplorer, ExplorerError

    class MLPOptions(Options):
        image_size: int = 32

    class MLP(ModelBuilder):
        name = "test_mlp"
        Options = MLPOptions

        def build(self, ctx):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, ctx.num_classes))

        def preprocessing(self):
            return Preprocessing(image_size=32)

    class Plugin:
        @vitcore.hookimpl
        def register_models(self, register):
            register(MLP)

    with registered_plugin(Plugin(), "test-mlp"):
        spec = make_spec(tmp_path / "runs", "mlp", epochs=1)
        spec["model"] = {"type": "test_mlp"}
        run_dir = train_spec(spec).run_dir
        explorer = AttentionExplorer()
        info = explorer.info(run_dir)
        assert not info["available"] and "no installed plugin describes a Sequential as a ViT" in info["reason"]
        assert len(info["samples"]) == 8
        with pytest.raises(ExplorerError, match="vit_view"):
            explorer.explain(run_dir, sample=0)


def test_a_timm_model_with_average_pooling_and_no_class_token(tmp_path, make_spec):
    """The same explorer through timm's vit_view: no prefix token, so rollout follows the mean of
    the patch tokens, and a patch query still works."""
    pytest.importorskip("vitcore_vit_timm")
    from vitcore.testing.engine import train_spec
    from vitcore_dashboard.attention import AttentionExplorer
    from vitcore_dashboard.explorer import model_view

    spec = make_spec(tmp_path / "runs", "timm", epochs=1)
    spec["model"] = {"type": "timm_vit", "name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8,
                     "depth": 2, "embed_dim": 32, "num_heads": 2, "global_pool": "avg", "class_token": False}
    run_dir = train_spec(spec).run_dir
    explorer = AttentionExplorer()
    info = explorer.info(run_dir)
    assert info["available"] and info["prefix_tokens"] == 0 and info["pooling"] == "avg" and info["grid"] == [4, 4]
    pooled = explorer.explain(run_dir, sample=1, layer="rollout")
    assert pooled["query"].startswith("the pooled output") and np.sum(pooled["weights"]) == pytest.approx(1, abs=1e-4)
    patch = explorer.explain(run_dir, sample=1, layer=1, head=1, patch=(3, 3))
    assert patch["patch"] == [3, 3] and patch["share_on_patches"] == pytest.approx(1, abs=1e-4)  # no prefix
    import json

    view = model_view(json.loads((run_dir / "model_summary.json").read_text()), [])
    assert view["blocks"] == ["blocks.0", "blocks.1"]
