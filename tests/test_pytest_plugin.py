"""vitcore's pytest plugin (entry point pytest11): every test starts from a clean vitcore."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import vitcore
from vitcore import plugins


class _Leaky:
    @vitcore.hookimpl
    def vit_view(self, model):
        return None


def test_a_test_gets_its_own_cache_and_no_plugin_selection(tmp_path):
    assert os.environ["VITCORE_CACHE"] == str(tmp_path / "cache")
    assert "VITCORE_LOAD_PLUGINS" not in os.environ
    plugins.get_host().register_plugin(_Leaky(), name="leaky")  # left behind on purpose


def test_the_next_test_has_a_fresh_plugin_host():
    assert "leaky" not in plugins.get_host().infos


SUITE = '''
import os

def test_isolated(tmp_path):
    assert os.environ.get("VITCORE_CACHE") == str(tmp_path / "cache")
    assert "VITCORE_LOAD_PLUGINS" not in os.environ
'''


def test_any_suite_in_the_environment_gets_it_and_can_turn_it_off(tmp_path):
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    env = {**os.environ, "VITCORE_CACHE": "/elsewhere", "VITCORE_LOAD_PLUGINS": "none"}

    def pytest(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_suite.py"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    done = pytest()
    assert done.returncode == 0, done.stdout
    assert pytest("-p", "no:vitcore").returncode == 1
    (tmp_path / "pytest.ini").write_text("[pytest]\nvitcore_isolation = false\n")
    assert pytest().returncode == 1
