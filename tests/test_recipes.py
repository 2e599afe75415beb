"""The built-in recipes: listed and shown by the CLI, each validates when a spec extends it, and
small-data trains end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitcore.spec_extends import recipes
from vitcore.testing import make_image_folder, run_cli, write_spec

REPO = Path(__file__).resolve().parent.parent
NAMES = ("finetune", "imagenet-deit", "small-data")


def test_recipes_list_shows_each_recipe_with_its_purpose():
    listed = run_cli("recipes", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(NAMES)
    for line, recipe in zip(lines, recipes()):
        assert recipe.purpose and line.split(None, 1)[1] == recipe.purpose
    as_json = json.loads(run_cli("recipes", "list", "--json").stdout)
    assert [r["name"] for r in as_json] == list(NAMES) and all(Path(r["file"]).is_file() for r in as_json)


def test_recipes_show_prints_the_recipe_and_an_unknown_name_exits_2():
    shown = run_cli("recipes", "show", "small-data")
    assert shown.returncode == 0, shown.stderr
    recipe = json.loads(shown.stdout)
    assert recipe["meta"]["recipe"] == "small-data" and recipe["train"]["decode"] == "cache"
    unknown = run_cli("recipes", "show", "smal-data")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "no built-in recipe 'smal-data'; did you mean recipe:small-data?" in unknown.stderr


def test_every_recipe_states_its_purpose_and_reasons():
    for recipe in recipes():
        meta = json.loads(recipe.path.read_text())["meta"]
        assert meta["recipe"] == recipe.name and meta["why"], recipe.name
        assert "data" not in json.loads(recipe.path.read_text()), "a recipe must not choose the user's data"


@pytest.mark.parametrize("name", NAMES)
def test_a_spec_extending_each_recipe_validates(tmp_path, name):
    data = make_image_folder(tmp_path / "data", per_class=4)
    spec = write_spec(tmp_path / "spec.json", {"extends": f"recipe:{name}",
                                               "data": {"type": "imagefolder", "root": str(data)}})
    result = run_cli("validate", str(spec), "--spec-only", "--set", "train.device=cpu")
    assert result.returncode == 0, result.stderr


def test_the_quickstart_and_a_spec_on_small_data_validate_fully(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=4)
    spec = write_spec(tmp_path / "spec.json", {"extends": "recipe:small-data",
                                               "data": {"type": "imagefolder", "root": str(data)},
                                               "model": {"image_size": 32, "patch_size": 4}})
    result = run_cli("validate", str(spec), "--print")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["model"]["patch_size"] == 4 and out["model"]["depth"] == 6  # the recipe's, patch changed
    assert out["meta"]["recipe"] == "small-data"  # so summary.json says which recipe a run used
    assert "recipe:small-data" in result.stderr  # --print names the recipe as the values' source


def test_small_data_trains_end_to_end(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=8)
    spec = write_spec(tmp_path / "spec.json", {
        "extends": "recipe:small-data", "name": "recipe", "output_dir": "runs",
        "data": {"type": "imagefolder", "root": str(data), "val_fraction": 0.25},
        "model": {"image_size": 32, "patch_size": 8, "depth": 1},
        "train": {"epochs": 2, "batch_size": 8, "num_workers": 0, "warmup_epochs": 0},
        "visualizers": [], "exporters": [], "sinks": [],
    })
    result = run_cli("run", str(spec), env={"VITCORE_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "runs" / "recipe" / "v1" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    assert summary["meta"]["recipe"] == "small-data"
    assert any((tmp_path / "cache").rglob("*.json")), "decode: cache built its cache"


def test_the_textures_data_set_of_the_recipe_benchmark_is_a_real_repeatable_image_folder(tmp_path):
    import importlib.util
    import hashlib

    from vitcore.spec import resolve_component

    spec = importlib.util.spec_from_file_location("textures", REPO / "benchmarks" / "textures.py")
    textures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(textures)
    for out in (tmp_path / "a", tmp_path / "b"):
        textures.generate(out, per_class=2, val_per_class=1, size=24, seed=3, noise=0.1)

    def digests(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png")}

    assert digests(tmp_path / "a") == digests(tmp_path / "b") and len(digests(tmp_path / "a")) == 7 * 3
    provider = resolve_component({"type": "imagefolder", "root": str(tmp_path / "a")}, "datasets", "data")
    from vitcore.components import DataContext

    splits = provider.instantiate().load(DataContext(cache_dir=tmp_path / "cache", seed=0, spec_dir=tmp_path))
    assert splits.classes == sorted(textures.CLASSES) and len(splits.train) == 14 and len(splits.val) == 7
