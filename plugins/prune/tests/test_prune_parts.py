"""The plan's notation, the `pruned` builder's contract and errors, and the pictures of a pruned
model: each without a training run."""

from __future__ import annotations

import importlib.util
import json

import pytest

from vitcore.api import SpecError, VitcoreError, load_dict
from vitcore.testing import check_model_builder, check_visualizer, run_cli, tiny_spec, write_spec
from vitcore_prune.builder import PrunedViT
from vitcore_prune.plan import format_indices, keep_most_important, parse_indices, removed_count

BASE = {"type": "torchvision_vit", "image_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 4}
PRUNED = {"base": BASE, "heads": ["0,2-3", "1-3"], "mlp": ["0-63", "64-127"]}


def test_kept_indices_read_and_write_as_ranges():
    assert format_indices([5, 0, 1, 2, 3, 9, 10]) == "0-3,5,9-10"
    assert parse_indices("0-3,5,9-10") == [0, 1, 2, 3, 5, 9, 10]
    for bad, says in (("3,1", "ascend"), ("0-x", "not an index"), ("4-2", "ascending range"), ("1,,2", "empty")):
        with pytest.raises(ValueError, match=says):
            parse_indices(bad)


def test_shares_round_to_whole_heads_and_keep_the_highest_scores():
    assert [removed_count(0.25, n, "--heads") for n in (4, 6, 12)] == [1, 2, 3]
    assert removed_count(0.5, 1536, "--mlp") == 768
    with pytest.raises(ValueError, match="leaves none"):
        removed_count(0.9, 4, "--heads")
    assert keep_most_important([0.3, 0.1, 0.9, 0.1], 2) == [0, 2]
    assert keep_most_important([0.5, 0.5, 0.5], 1) == [0, 1]  # ties keep the lower index


def test_the_pruned_builder_keeps_the_model_builder_contract():
    model = check_model_builder(PrunedViT, PRUNED)
    attn = model.encoder.layers[0].self_attention
    assert (attn.num_heads, attn.in_proj_weight.shape[0], model.encoder.layers[0].mlp[0].out_features) == (3, 72, 64)


def test_a_plan_that_does_not_fit_the_model_is_a_spec_error_naming_the_field(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["model"] = {"type": "pruned", "base": BASE, "heads": ["0-2", "1-2,5"]}
    path = write_spec(tmp_path / "spec.json", spec)
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert "model.heads[1]: index 5 is out of range, block 1 has 4 heads" in result.stderr
    assert "Traceback" not in result.stderr
    spec["model"] = {"type": "pruned", "base": BASE, "heads": ["0-2", "1"]}
    result = run_cli("validate", str(write_spec(tmp_path / "spec.json", spec)))
    assert result.returncode == 2 and "model.heads: every block must keep as many heads" in result.stderr


def test_the_base_entry_is_validated_with_its_own_options(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["model"] = {"type": "pruned", "base": {**BASE, "depht": 2}}
    with pytest.raises(SpecError, match=r"model: .*base\.depht: unknown field; did you mean 'depth'"):
        load_dict(spec)
    spec["model"] = {"type": "pruned", "base": {"type": "pruned", "base": BASE}}
    with pytest.raises(SpecError, match="base: is itself a pruned model"):
        load_dict(spec)
    spec["model"] = {"type": "pruned", "base": BASE, "mlp": ["0-3,2"]}
    with pytest.raises(SpecError, match=r"model.mlp: .*must ascend"):
        load_dict(spec)


def test_the_command_says_what_is_wrong(tmp_path):
    from vitcore.testing import train_spec

    result = run_cli("prune", str(tmp_path), "--heads", "0.25")
    assert result.returncode == 1 and "not a run directory" in result.stderr
    spec = tiny_spec(tmp_path, epochs=1)
    spec.update(sinks=[], visualizers=[], exporters=[])
    run_dir = train_spec(spec).run_dir
    result = run_cli("prune", str(run_dir))
    assert result.returncode == 1 and "nothing to prune: give --heads and/or --mlp" in result.stderr
    result = run_cli("prune", str(run_dir), "--heads", "0.9")
    assert result.returncode == 1 and "--heads: removing 0.9 of the 2 per block leaves none" in result.stderr
    done = run_cli("prune", str(run_dir), "--mlp", "0.5", "--criterion", "magnitude")
    assert done.returncode == 0, done.stderr
    again = run_cli("prune", str(run_dir.parent / "v2"), "--mlp", "0.5")
    assert again.returncode == 1 and "is already a pruned run; prune its source run" in again.stderr
    assert json.loads((run_dir.parent / "v2" / "summary.json").read_text())["meta"]["pruning"]["criterion"] == "magnitude"


@pytest.mark.skipif(importlib.util.find_spec("vitcore_viz_attention") is None, reason="vitcore-viz-attention missing")
@pytest.mark.parametrize("name", ["attention_maps", "fc_layers"])
def test_attention_and_fc_pictures_of_a_pruned_model(tmp_path, name):
    from vitcore.api import registry

    pictures = check_visualizer(registry("visualizers").get(name).component, None, tmp_path,
                                model={"type": "pruned", **PRUNED})
    assert pictures


def test_an_unknown_model_family_is_refused():
    import torch

    from vitcore_prune.plan import Plan
    from vitcore_prune.surgery import prune

    with pytest.raises(VitcoreError, match="cannot prune a Linear"):
        prune(torch.nn.Linear(2, 2), Plan(None, None))
