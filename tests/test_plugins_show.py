"""`vitcore plugins show NAME`, `plugins list --strict`, and what a spec naming a component of a
plugin that failed to load is told, with real installed plugin packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vitcore.testing import run_cli, tiny_spec, write_spec

FIXTURE_PLUGINS = Path(__file__).resolve().parent / "fixtures" / "plugins"
FAILING = "vitcore-test-recorder,vitcore-test-broken,vitcore-test-hookfail"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The fixture plugin packages really pip-installed (with their entry points) into a folder."""
    site = tmp_path_factory.mktemp("site")
    packages = sorted(str(p) for p in FIXTURE_PLUGINS.iterdir() if (p / "pyproject.toml").is_file())
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), *packages], check=True, capture_output=True, text=True)
    return site


def env(site: Path, load: str) -> dict[str, str]:
    return {"PYTHONPATH": str(site), "VITCORE_LOAD_PLUGINS": load}


def test_show_lists_a_plugin_components_options_with_defaults_and_descriptions():
    result = run_cli("plugins", "show", "attention_maps")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("attention_maps  (visualizer, plugin vitcore-viz-attention ")
    assert "Per layer and head, where the class token" in lines[1]
    rows = {line.split()[0]: line for line in lines if line.startswith("    ") and line.split()}
    assert "int, default 4" in rows["num_samples"] and "int, default 0" in rows["every_n_epochs"]
    assert "default null" in rows["query_patch"] and "default null" in rows["layers"]
    assert any("Blocks to show (0 is the first); default all." in line for line in lines)
    example = json.loads(lines[-1].split("in a spec (visualizers): ", 1)[1])
    assert example["type"] == "attention_maps" and example["num_samples"] == 4


def test_show_json_for_a_builtin_and_for_an_installed_third_party_plugin(plugin_site):
    builtin = run_cli("plugins", "show", "tensorboard", "--json")
    assert builtin.returncode == 0, builtin.stderr
    info = json.loads(builtin.stdout)
    assert (info["kind"], info["builtin"], info["plugin"]) == ("sinks", True, "vitcore.builtin.sinks")
    assert {"name": "flush_secs", "type": "int", "default": "10",
            "description": "Seconds between flushes of the event file."} in info["options"]

    third = run_cli("plugins", "show", "recorder", "--json", env=env(plugin_site, "vitcore-test-recorder"))
    assert third.returncode == 0, third.stderr
    info = json.loads(third.stdout)
    assert (info["plugin"], info["version"], info["builtin"]) == ("vitcore-test-recorder", "1.2.3", False)
    assert [(o["name"], o["default"]) for o in info["options"]] == [("filename", '"recorded.jsonl"')]


def test_show_an_unknown_name_suggests_close_ones_and_names_failed_plugins(plugin_site):
    result = run_cli("plugins", "show", "tensorbord", env=env(plugin_site, "vitcore-test-broken"))
    assert result.returncode == 1
    assert "no component is called 'tensorbord'; did you mean 'tensorboard'" in result.stderr
    assert "plugin vitcore-test-broken failed to load: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_strict_fails_when_a_plugin_failed_and_passes_when_all_loaded(plugin_site):
    strict = run_cli("plugins", "list", "--strict", env=env(plugin_site, FAILING))
    assert strict.returncode == 1
    assert "vitcore-test-broken 0.1.0 [ERROR]" in strict.stdout, "the list is still printed"
    assert ("plugins list --strict: 2 plugin(s) failed to load: vitcore-test-broken, vitcore-test-hookfail"
            in strict.stderr)
    as_json = run_cli("plugins", "list", "--strict", "--json", env=env(plugin_site, FAILING))
    assert as_json.returncode == 1
    assert {p["name"]: p["status"] for p in json.loads(as_json.stdout)}["vitcore-test-broken"] == "error"

    lenient = run_cli("plugins", "list", env=env(plugin_site, FAILING))
    assert lenient.returncode == 0
    clean = run_cli("plugins", "list", "--strict", env=env(plugin_site, "vitcore-test-recorder"))
    assert clean.returncode == 0, clean.stderr


def test_a_spec_naming_a_missing_component_is_told_which_plugin_failed_to_load(plugin_site, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["model"] = {"type": "stripes_vit"}
    path = write_spec(tmp_path / "spec.json", spec)
    result = run_cli("validate", str(path), env=env(plugin_site, FAILING))
    assert result.returncode == 2
    message = result.stderr
    assert "model.type: unknown model 'stripes_vit'" in message
    assert ("plugin vitcore-test-broken failed to load: ModuleNotFoundError: No module named "
            "'vitcore_this_module_does_not_exist'") in message
    assert ("plugin vitcore-test-hookfail failed to load: register_models raised RuntimeError: "
            "model registry exploded") in message
    assert "`vitcore plugins list` shows each plugin's state" in message and "Traceback" not in message

    # The hook that raised registers models only: a missing sink does not blame it.
    spec = tiny_spec(tmp_path)
    spec["sinks"] = [{"type": "stripes_sink"}]
    result = run_cli("validate", str(write_spec(tmp_path / "sink.json", spec)), env=env(plugin_site, FAILING))
    assert result.returncode == 2 and "unknown sink 'stripes_sink'" in result.stderr
    assert "vitcore-test-broken failed to load" in result.stderr
    assert "vitcore-test-hookfail" not in result.stderr
