"""Acceptance of `vitcore plugins new`: for every kind, the generated package installs, is listed,
takes part in a real training run and passes its own tests, all unchanged."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import vitcore
from vitcore.cli import main, plugins_new
from vitcore.scaffold import KINDS, requirement
from vitcore.testing import run_cli, tiny_spec, write_spec

#: A plugin name per kind; underscores check the name -> folder/package/distribution mapping.
NAMES = {"dataset": "coloured_squares", "model": "tiny_vit", "augmentation": "invert_colours",
         "sink": "epoch_csv", "visualizer": "weight_hist", "exporter": "npz_weights"}


def dist(name: str) -> str:
    return "vitcore-" + name.replace("_", "-")


@dataclass
class Generated:
    src: Path
    site: Path

    def env(self, load: list[str]) -> dict[str, str]:
        return {"PYTHONPATH": str(self.site), "VITCORE_LOAD_PLUGINS": ",".join(load)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Generated:
    """Six plugins from the scaffold (plus one asking for plugin API 2), pip-installed in one call."""
    root = tmp_path_factory.mktemp("scaffold")
    src = root / "src"
    runner = CliRunner()
    for kind, name in [*NAMES.items(), ("sink", "future")]:
        result = runner.invoke(main, ["plugins", "new", name, "--kind", kind, "--dir", str(src)])
        assert result.exit_code == 0, result.output
    future = src / "vitcore-future" / "vitcore_future" / "__init__.py"
    future.write_text(future.read_text().replace(f'"{requirement()}"', '">=2.0"'))
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), *sorted(str(p) for p in src.iterdir())],
        check=True, capture_output=True, text=True,
    )
    yield Generated(src, site)
    shutil.rmtree(root)


def test_every_generated_plugin_is_listed_and_one_for_another_api_is_refused(generated):
    result = run_cli("plugins", "list", "--json", env=generated.env([*map(dist, NAMES.values()), "vitcore-future"]))
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    for kind, name in NAMES.items():
        info = listed[dist(name)]
        assert info["status"] == "ok", info["errors"]
        assert info["components"] == {KINDS[kind].registry: [name]}
        assert info["hooks"] == [KINDS[kind].hook]
        assert info["api"] == {"provided": vitcore.PLUGIN_API_VERSION, "required": requirement()}
    future = listed["vitcore-future"]
    assert future["status"] == "error" and future["components"] == {} and future["hooks"] == []
    assert "needs vitcore plugin API >=2.0" in future["errors"][0]
    assert f"provides plugin API {vitcore.PLUGIN_API_VERSION}" in future["errors"][0]

    table = run_cli("plugins", "list", env=generated.env(["vitcore-future"]))
    assert f"plugin API {vitcore.PLUGIN_API_VERSION}" in table.stdout.splitlines()[0]
    assert "vitcore-future 0.1.0 [ERROR]" in table.stdout


def test_a_run_uses_every_generated_component(generated, tmp_path):
    spec = tiny_spec(tmp_path, epochs=1)
    spec.update(
        data={"type": "coloured_squares", "per_class": 8},
        model={"type": "tiny_vit", "dim": 32, "depth": 1},
        augmentations=[{"type": "invert_colours", "p": 0.5}],
        sinks=[{"type": "epoch_csv"}],
        visualizers=[{"type": "weight_hist"}],
        exporters=[{"type": "npz_weights"}],
    )
    load = [*map(dist, NAMES.values()), "vitcore-future"]  # a refused plugin leaves the run alone
    result = run_cli("run", str(write_spec(tmp_path / "spec.json", spec)), env=generated.env(load))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["classes"] == ["red", "green", "blue"]
    with open(run_dir / "epochs.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1"]
    with Image.open(run_dir / "plots" / "weight_hist.png") as picture:
        assert picture.width > 100
    with np.load(run_dir / "exports" / "weights.npz") as archive:
        assert list(archive["classes"]) == ["red", "green", "blue"]
        assert "weights/head.weight" in archive.files


def test_the_generated_test_suites_pass_unchanged(generated):
    suites = [str(generated.src / dist(name) / "tests") for name in NAMES.values()]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites],
                          capture_output=True, text=True, cwd=generated.src, timeout=300,
                          env={**os.environ, **generated.env([dist(n) for n in NAMES.values()])})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["epoch_csv", "--kind", "sink"], "already exists"),
    (["1st", "--kind", "sink"], "'1st' is not a valid plugin name"),
    (["My-Plugin", "--kind", "sink"], "'My-Plugin' is not a valid plugin name"),
    (["a__b", "--kind", "model"], "'a__b' is not a valid plugin name"),
    (["csv", "--kind", "sink"], "a sink called 'csv' already exists (plugin 'vitcore.builtin.sinks')"),
    (["fine", "--kind", "sinks"], "'sinks' is not one of"),
])
def test_bad_requests_are_refused_clearly(generated, args, message):
    result = run_cli("plugins", "new", *args, "--dir", str(generated.src), env=generated.env([]))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_command_offers_exactly_the_scaffold_kinds():
    kind = next(p for p in plugins_new.params if p.name == "kind")
    assert list(kind.type.choices) == list(KINDS)
