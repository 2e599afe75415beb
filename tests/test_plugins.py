"""Plugin discovery through real installed entry points, isolation of broken plugins, selection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import vitcore
from vitcore import plugins
from vitcore.components import MetricSink, ModelBuilder
from vitcore.errors import DuplicateComponentError, SpecError
from vitcore.spec import load_dict
from vitcore.testing import run_cli, tiny_spec, write_spec

REPO = Path(__file__).resolve().parent.parent
FIXTURE_PLUGINS = REPO / "tests" / "fixtures" / "plugins"
ALL_TEST_PLUGINS = "vitcore-test-recorder,vitcore-test-broken,vitcore-test-hookfail,vitcore-test-misspelt,vitcore-test-dupe"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """Really pip-install the fixture plugin packages (with their entry points) into a folder."""
    site = tmp_path_factory.mktemp("site")
    packages = sorted(str(p) for p in FIXTURE_PLUGINS.iterdir() if (p / "pyproject.toml").is_file())
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), *packages],
        check=True, capture_output=True, text=True,
    )
    return site


def env_with(site: Path, load: str | None) -> dict:
    env = {"PYTHONPATH": str(site)}
    if load is not None:
        env["VITCORE_LOAD_PLUGINS"] = load
    return env


def plugins_json(site: Path, load: str | None, *extra: str) -> dict:
    result = run_cli("plugins", "list", "--json", *extra, env=env_with(site, load))
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_installed_plugin_is_discovered_through_its_entry_point(plugin_site):
    listed = plugins_json(plugin_site, "vitcore-test-recorder")
    assert list(listed) == ["vitcore-test-recorder"]
    info = listed["vitcore-test-recorder"]
    assert info["version"] == "1.2.3"
    assert info["status"] == "ok"
    assert info["components"] == {"sinks": ["recorder"]}
    assert sorted(info["hooks"]) == ["register_commands", "register_metric_sinks"]


def test_plugins_add_commands_to_the_cli(plugin_site):
    result = run_cli("recorder-hello", "world", env=env_with(plugin_site, "vitcore-test-recorder"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello world from the recorder plugin"
    absent = run_cli("recorder-hello", "world", env=env_with(plugin_site, ""))
    assert absent.returncode == 2 and "No such command" in absent.stderr


def test_broken_plugins_are_reported_and_the_rest_still_work(plugin_site, tmp_path):
    listed = plugins_json(plugin_site, ALL_TEST_PLUGINS)
    assert listed["vitcore-test-broken"]["status"] == "error"
    assert "vitcore_this_module_does_not_exist" in listed["vitcore-test-broken"]["errors"][0]
    assert "model registry exploded" in listed["vitcore-test-hookfail"]["errors"][0]
    assert "unknown hook 'register_model'" in listed["vitcore-test-misspelt"]["errors"][0]
    dupe_error = listed["vitcore-test-dupe"]["errors"][0]
    assert "vitcore-test-recorder" in dupe_error and "vitcore-test-dupe" in dupe_error
    assert listed["vitcore-test-recorder"]["status"] == "ok"

    table = run_cli("plugins", "list", env=env_with(plugin_site, ALL_TEST_PLUGINS))
    assert table.returncode == 0
    assert "vitcore-test-broken 0.1.0 [ERROR]" in table.stdout

    spec = write_spec(tmp_path / "spec.json", tiny_spec(tmp_path))
    check = run_cli("validate", str(spec), env=env_with(plugin_site, ALL_TEST_PLUGINS))
    assert check.returncode == 0, check.stderr
    assert "valid" in check.stdout


def test_a_duplicated_name_used_in_a_spec_names_both_plugins(plugin_site, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["sinks"] = [{"type": "recorder"}]
    path = write_spec(tmp_path / "spec.json", spec)
    result = run_cli("validate", str(path), env=env_with(plugin_site, "vitcore-test-recorder,vitcore-test-dupe"))
    assert result.returncode == 2
    assert "sinks[0].type" in result.stderr
    assert "'vitcore-test-recorder'" in result.stderr and "'vitcore-test-dupe'" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_plugins_variable_selects_what_loads(plugin_site):
    assert plugins_json(plugin_site, "") == {}
    builtins = plugins_json(plugin_site, "", "--all")
    assert "vitcore.builtin.models" in builtins
    assert all(info["builtin"] for info in builtins.values())
    assert set(plugins_json(plugin_site, "vitcore_test_recorder")) == {"vitcore-test-recorder"}


def test_third_party_sink_receives_the_records_of_a_real_run(plugin_site, tmp_path):
    spec = tiny_spec(tmp_path, epochs=1)
    spec["sinks"] = [{"type": "recorder", "filename": "copy.jsonl"}]
    path = write_spec(tmp_path / "spec.json", spec)
    result = run_cli("run", str(path), env=env_with(plugin_site, "vitcore-test-recorder"))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "tiny" / "v1"
    copied = [json.loads(line) for line in (run_dir / "copy.jsonl").read_text().splitlines()]
    assert copied == [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert copied[-1]["event"] == "epoch"


def test_help_and_plugins_list_do_not_import_torch():
    probe = (
        "import sys\n"
        "from vitcore.cli import main\n"
        "for args in (['--help'], ['plugins', 'list', '--all']):\n"
        "    try:\n"
        "        main(args, prog_name='vitcore')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH"


def test_python_dash_m_behaves_like_the_console_script():
    script = Path(sys.executable).with_name("vitcore")
    if not script.exists():
        pytest.skip("vitcore is not installed as a console script in this environment")
    via_script = subprocess.run([str(script), "plugins", "list", "--all", "--json"], capture_output=True, text=True)
    via_module = run_cli("plugins", "list", "--all", "--json")
    assert via_script.returncode == via_module.returncode == 0
    assert json.loads(via_script.stdout) == json.loads(via_module.stdout)
    bad_script = subprocess.run([str(script), "validate", "missing.json"], capture_output=True, text=True)
    bad_module = run_cli("validate", "missing.json")
    assert bad_script.returncode == bad_module.returncode == 2
    assert bad_script.stderr == bad_module.stderr


# -- in-process: the registry's own messages -------------------------------------------------


class _ModelA(ModelBuilder):
    name = "torchvision_vit"


class _PluginA:
    @vitcore.hookimpl
    def register_models(self, register):
        register(_ModelA)


def test_registering_a_taken_name_is_an_error_naming_both_plugins():
    host = plugins.get_host()
    info = host.register_plugin(_PluginA(), name="my-plugin")
    assert info.status == "error"
    assert "'vitcore.builtin.models'" in info.errors[0] and "'my-plugin'" in info.errors[0]
    with pytest.raises(DuplicateComponentError, match="my-plugin"):
        host.registry("models").get("torchvision_vit")


def test_unknown_component_suggests_the_closest_name(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["model"]["type"] = "torchvision_vtt"
    with pytest.raises(SpecError) as caught:
        load_dict(spec, source="spec.json")
    message = str(caught.value)
    assert message.startswith("spec.json: model.type: unknown model 'torchvision_vtt'")
    assert "Did you mean 'torchvision_vit'?" in message
    assert "Available:" in message


class _NotASink:
    name = "oops"


class _PluginWrongBase:
    @vitcore.hookimpl
    def register_metric_sinks(self, register):
        register(_NotASink)


def test_registering_a_class_of_the_wrong_kind_is_reported():
    info = plugins.get_host().register_plugin(_PluginWrongBase(), name="wrong-base")
    assert info.status == "error"
    assert "not a subclass of vitcore.components.MetricSink" in info.errors[0]
    assert MetricSink  # the base the message names


# -- hook calls go through pluggy, one plugin's failure stays its own ---------------------------------


class _BrokenView:
    @vitcore.hookimpl
    def vit_view(self, model):
        raise RuntimeError("cannot describe it")


def test_a_vit_view_that_raises_is_recorded_and_the_next_plugin_answers():
    import torchvision

    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                 hidden_dim=16, mlp_dim=32, num_classes=3)
    host = plugins.get_host()
    info = host.register_plugin(_BrokenView(), name="broken-view")  # registered last: asked first
    assert info.status == "ok"
    with pytest.warns(UserWarning, match="plugin broken-view: vit_view raised RuntimeError: cannot describe it"):
        view = host.vit_view(model)
    assert view is not None and view.num_blocks == 2 and view.grid == (4, 4)  # the builtin torchvision view
    assert info.status == "error" and info.errors[0].startswith("vit_view raised RuntimeError: cannot describe it")


def _recorder(label: str, calls: list[str], **marks) -> object:
    class Recorder:
        @vitcore.hookimpl(**marks)
        def run_finished(self, run_dir, summary):
            calls.append(label)
            return label

    return Recorder()


def test_call_follows_pluggy_ordering_and_wrappers_and_isolates_a_failure():
    calls: list[str] = []

    class Failing:
        @vitcore.hookimpl
        def run_finished(self, run_dir, summary):
            calls.append("failing")
            raise ValueError("bad report")

    class Wrapper:
        @vitcore.hookimpl(wrapper=True)
        def run_finished(self, run_dir, summary):
            calls.append("wrapper before")
            results = yield
            calls.append(f"wrapper after {len(results)}")
            return results

    host = plugins.get_host()
    host.register_plugin(_recorder("first", calls, tryfirst=True), name="first")  # registered first, runs first
    host.register_plugin(_recorder("plain", calls), name="plain")
    failing = host.register_plugin(Failing(), name="failing")
    host.register_plugin(_recorder("last", calls, trylast=True), name="last")
    host.register_plugin(Wrapper(), name="wrapper")
    with pytest.warns(UserWarning, match="plugin failing: run_finished raised ValueError: bad report"):
        results = host.call("run_finished", run_dir=Path("."), summary={})
    assert calls == ["wrapper before", "first", "failing", "plain", "last", "wrapper after 3"]
    assert results == ["first", "plain", "last"]
    assert failing.errors[0].startswith("run_finished raised ValueError: bad report")


def test_call_lets_the_exceptions_it_is_told_to_pass_through():
    from vitcore.components import StopRun

    class Pruner:
        @vitcore.hookimpl
        def epoch_end(self, event):
            raise StopRun(status="pruned", reason="below the median")

    host = plugins.get_host()
    info = host.register_plugin(Pruner(), name="pruner")
    with pytest.raises(StopRun, match="below the median"):
        host.call("epoch_end", propagate=(StopRun,), event=None)
    assert info.status == "ok", "a StopRun asked for is a message, not a failure"
    with pytest.warns(UserWarning, match="epoch_end raised StopRun"):
        assert host.call("epoch_end", event=None) == []
    assert info.status == "error"
