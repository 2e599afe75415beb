"""Every visualizer draws non-blank pictures for torchvision, hf_vit and odd-shaped ViTs, runs when
it is due, and skips with a warning what it cannot show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from vitcore_viz_attention.attention_viz import AttentionMaps, AttentionRollout
from vitcore_viz_attention.base import VizContext
from vitcore_viz_attention.visualizers import VISUALIZERS
from vitcore_viz_attention.weights_viz import PatchEmbedding, PositionEmbedding

from vitcore.api import Preprocessing, VisualizerContext, VitcoreError
from vitcore.testing import check_visualizer, colour_images

#: File names each visualizer writes for a 2-sample context.
FILES = {
    "attention_maps": ["attention_maps_0.png", "attention_maps_1.png"],
    "attention_rollout": ["attention_rollout.png"],
    "attention_stats": ["attention_entropy.png", "attention_distance.png", "attention_histograms.png"],
    "position_embedding": ["position_embedding.png"],
    "patch_embedding": ["patch_embedding.png"],
    "fc_layers": ["fc_histograms.png", "fc_heatmaps.png", "fc_spectra.png"],
}


def _context(tmp_path: Path, model, height: int, width: int, **fields) -> VisualizerContext:
    images = colour_images(2, height, width)
    fields = {"epoch": 3, "final": True, "samples": [(images[0], 0), (images[1], 2)], **fields}
    return VisualizerContext(run_dir=tmp_path, records=[], classes=["a", "b", "c"], model=model,
                             preprocessing=Preprocessing(image_size=height), **fields)


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.min() != pixels.max(), f"{path.name} is blank"
    return image.size


@pytest.mark.parametrize("visualizer", VISUALIZERS, ids=lambda v: v.name)
def test_each_visualizer_keeps_the_contract_on_a_torchvision_vit(visualizer, tmp_path):
    paths = check_visualizer(visualizer, {"num_samples": 2} if "num_samples" in visualizer.Options.model_fields
                             else None, tmp_path)
    assert [p.name for p in paths] == FILES[visualizer.name]
    assert all(p.parent.name == "viz" for p in paths)


def test_every_visualizer_draws_an_hf_vit(tmp_path):
    pytest.importorskip("vitcore_vit_hf")
    tiny = {"type": "hf_vit", "image_size": 32, "patch_size": 8, "num_hidden_layers": 2, "hidden_size": 32,
            "num_attention_heads": 2, "intermediate_size": 64}
    for visualizer in VISUALIZERS:
        options = {"num_samples": 2} if "num_samples" in visualizer.Options.model_fields else None
        paths = check_visualizer(visualizer, options, tmp_path / visualizer.name, model=tiny)
        assert [p.name for p in paths] == FILES[visualizer.name]


@pytest.mark.parametrize("pooling, visualizers", [("token", VISUALIZERS), ("avg", (AttentionMaps, AttentionRollout))],
                         ids=["token", "avg"])
def test_two_prefix_tokens_on_a_non_square_grid(toy_vit, tmp_path, pooling, visualizers):
    model = toy_vit(image_size=(24, 40), patch_size=(8, 8), prefix=2, pooling=pooling)  # 3x5 grid
    ctx = _context(tmp_path, model, 24, 40)
    for visualizer in visualizers:
        paths = visualizer().render(ctx)
        assert [p.name for p in paths] == FILES[visualizer.name]
        for path in paths:
            _size(path)
    width, height = _size(tmp_path / "viz" / "attention_rollout.png")
    assert width > height, "the 40-wide images are drawn wider than high"


def test_query_patch_shows_one_patchs_attention_and_is_checked_against_the_grid(toy_vit, tmp_path):
    model = toy_vit(image_size=(16, 32), patch_size=(8, 8))  # a 2x4 grid
    ctx = _context(tmp_path, model, 16, 32)
    paths = AttentionMaps(AttentionMaps.Options(query_patch=(1, 3), layers=[1])).render(ctx)
    assert len(paths) == 2
    with pytest.raises(VitcoreError, match="outside the model's 2x4 patch grid"):
        AttentionMaps(AttentionMaps.Options(query_patch=(2, 0))).render(ctx)
    with pytest.raises(VitcoreError, match="must name blocks 0..1"):
        AttentionMaps(AttentionMaps.Options(layers=[2])).render(ctx)


def test_visualizers_run_every_n_epochs_during_training_and_always_at_the_end(torchvision_vit, tmp_path):
    def drawn(every: int, epoch: int, final: bool) -> bool:
        ctx = _context(tmp_path, torchvision_vit, 32, 32, epoch=epoch, final=final)
        return bool(AttentionRollout(AttentionRollout.Options(every_n_epochs=every)).render(ctx))

    assert AttentionRollout.every_epoch and AttentionRollout.needs_model
    assert not drawn(0, 1, final=False), "by default only at the end"
    assert drawn(0, 1, final=True)
    assert drawn(2, 4, final=False) and not drawn(2, 3, final=False)


def test_a_model_no_plugin_describes_is_skipped_with_a_warning(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    ctx = _context(tmp_path, model, 32, 32)
    for visualizer in VISUALIZERS:
        with pytest.warns(UserWarning, match=f"{visualizer.name}: no installed plugin describes a Sequential"):
            assert visualizer().render(ctx) == []


def test_without_samples_the_image_visualizers_skip_and_the_weight_ones_still_draw(torchvision_vit, tmp_path):
    ctx = _context(tmp_path, torchvision_vit, 32, 32, samples=())
    with pytest.warns(UserWarning, match="attention_rollout: no sample images"):
        assert AttentionRollout().render(ctx) == []
    assert len(PatchEmbedding().render(ctx)) == 1


def test_a_model_without_position_embeddings_skips_that_picture(toy_vit, tmp_path):
    from vitcore.api import vit_view

    model = toy_vit()
    view = vit_view(model)
    ctx = _context(tmp_path, model, 24, 40)
    drawer = PositionEmbedding()
    with pytest.warns(UserWarning, match="no position embeddings"):
        view.position_embedding = lambda: None
        assert drawer.draw(ctx, view, tmp_path / "viz") == []


def test_viz_context_redirects_the_pictures(torchvision_vit, tmp_path):
    base = _context(tmp_path / "run", torchvision_vit, 32, 32)
    ctx = VizContext(**{f: getattr(base, f) for f in base.__dataclass_fields__}, viz_dir=tmp_path / "elsewhere")
    assert [p.parent for p in PositionEmbedding().render(ctx)] == [tmp_path / "elsewhere"]


def test_importing_the_plugin_and_its_hooks_loads_no_torch_matplotlib_or_numpy():
    code = (
        "import sys, click, vitcore_viz_attention as p\n"
        "p.register_visualizers(register=lambda c: None)\n"
        "p.register_commands(cli=click.Group())\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
