"""Every model family the README lists (the timm modules of ``VIT_MODULES``), built tiny: a run
trains a step, writes its model summary, pictures and report, and ``vitcore model summary``
describes it. XCiT's blocks attend across channels, so it has no token-attention view: its run
still completes with summary and report, and the attention pictures are skipped with a warning."""

from __future__ import annotations

import json

import pytest

from vitcore.api import vit_view
from vitcore.testing import run_cli, train_spec
from vitcore_vit_timm.names import VIT_MODULES

#: family (timm module) -> (model name, tiny sizes, patch grid of the 32 px input, prefix tokens);
#: BEiT and the relpos ViTs have relative positions only, so no position-embedding picture.
FAMILIES = {
    "vision_transformer": ("vit_tiny_patch16_224", {"patch_size": 8, "embed_dim": 32, "num_heads": 2}, (4, 4), 1),
    "deit": ("deit_tiny_distilled_patch16_224", {"patch_size": 8, "embed_dim": 32, "num_heads": 2}, (4, 4), 2),
    "eva": ("eva02_tiny_patch14_224", {"patch_size": 8, "embed_dim": 32, "num_heads": 2}, (4, 4), 1),
    "beit": ("beit_base_patch16_224", {"patch_size": 8, "embed_dim": 32, "num_heads": 2}, (4, 4), 1),
    "vision_transformer_relpos": ("vit_relpos_small_patch16_224", {"patch_size": 8, "embed_dim": 32,
                                                                    "num_heads": 2}, (4, 4), 0),
    "xcit": ("xcit_nano_12_p8_224", {"embed_dim": 32, "num_heads": 2}, None, None),
    "naflexvit": ("naflexvit_base_patch16_gap", {"patch_size": 8, "embed_dim": 32, "num_heads": 2}, (4, 4), 4),
}

PICTURES = ["attention_maps", "attention_stats", "patch_embedding", "position_embedding", "fc_layers"]
#: The files each visualizer draws (a prefix of each).
DRAWS = {"attention_maps": "attention_maps_", "attention_stats": "attention_entropy", "patch_embedding": "patch_embedding",
         "position_embedding": "position_embedding", "fc_layers": "fc_heatmaps"}
RELATIVE_POSITIONS = {"beit", "vision_transformer_relpos"}


def test_every_listed_family_has_a_case():
    assert set(FAMILIES) == set(VIT_MODULES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_tiny_model_of_each_family_trains_summarises_visualises_and_reports(family, tmp_path, image_folder):
    name, sizes, grid, prefix = FAMILIES[family]
    model = {"type": "timm_vit", "name": name, "img_size": 32, "depth": 1, **sizes}
    spec = {
        "name": family,
        "output_dir": str(tmp_path / "runs"),
        "data": {"type": "imagefolder", "root": str(image_folder(tmp_path / "data")), "val_fraction": 0.34},
        "model": model,
        "augmentations": [],
        "train": {"epochs": 1, "batch_size": 6, "warmup_epochs": 0, "num_workers": 0},
        "sinks": [],
        "visualizers": [{"type": "curves"}, *({"type": kind} for kind in PICTURES)],
        "exporters": [{"type": "safetensors"}],
    }
    if grid is None:
        with pytest.warns(UserWarning, match="nothing to look inside"):
            result = train_spec(spec)
    else:
        result = train_spec(spec)
    run = result.run_dir
    assert result.summary["status"] == "completed" and result.summary["steps"] == 2
    assert (run / "model_summary.txt").is_file() and (run / "report.html").is_file()
    assert (run / "plots" / "curves.png").is_file()
    drawn = sorted(p.name for p in (run / "viz").glob("*.png"))
    if grid is None:
        assert drawn == []
    else:
        expected = {kind for kind in PICTURES if not (kind == "position_embedding" and family in RELATIVE_POSITIONS)}
        assert {kind for kind in PICTURES if any(n.startswith(DRAWS[kind]) for n in drawn)} == expected, drawn

    summary = run_cli("model", "summary", str(run), "--json")  # the command a user types, in a child process
    assert summary.returncode == 0, summary.stdout + summary.stderr
    geometry = json.loads(summary.stdout)["geometry"]
    if grid is None:
        assert geometry is None
    else:
        assert (tuple(geometry["grid"]), geometry["prefix_tokens"]) == (grid, prefix)
        assert geometry["tokens"] == grid[0] * grid[1] + prefix


def test_naflexvit_view_maps_tokens_of_the_built_size_and_its_linear_patch_projection():
    """NaFlexViT's position grid (16x16 in its config) need not match the image: the view takes
    the size timm_vit built it for and the positions resampled as its forward resamples them."""
    import torch
    from vitcore_vit_timm.models import TimmViT

    from vitcore.api import ModelContext

    options = TimmViT.Options(name="naflexvit_base_patch16_gap", img_size=32, patch_size=8, depth=1, embed_dim=32,
                              num_heads=2)
    model = TimmViT(options).build(ModelContext(3, ["a", "b", "c"]))
    view = vit_view(model)
    assert view is not None and view.grid == (4, 4) and view.num_prefix_tokens == 4
    maps = view.capture_attention(torch.randn(2, 3, 32, 32))
    assert [m.shape for m in maps] == [(2, 2, 20, 20)]
    assert view.patch_embedding_weight().shape == (32, 3, 8, 8)
    assert view.position_embedding().shape == (16, 32)
    # The first patch's projection is the conv of the unflattened weight over the first 8x8 patch.
    image = torch.randn(1, 3, 32, 32)
    flat = image[0, :, :8, :8].permute(1, 2, 0).reshape(-1)  # (row, column, channel) as NaFlexViT flattens
    assert torch.allclose(model.embeds.proj(flat), torch.nn.functional.conv2d(
        image[:, :, :8, :8], view.patch_embedding_weight(), model.embeds.proj.bias)[0, :, 0, 0], atol=1e-5)
