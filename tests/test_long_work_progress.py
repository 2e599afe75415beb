"""Long work says what it does and how long each step took: the decoded-cache build and the
end-of-run exports of `vitcore run`, the steps' own lines, and the Makefile's installs."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vitcore.steps import format_seconds, progress_bar, timed_step
from vitcore.testing import run_cli, tiny_spec, write_spec

REPO = Path(__file__).resolve().parent.parent


def test_a_run_with_the_decoded_cache_shows_the_build_and_each_export_with_its_time(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1, decode="cache")
    spec["visualizers"] = []
    spec["exporters"] = [{"type": "safetensors"}, {"type": "torch"}]
    path = write_spec(tmp_path / "spec.json", spec)
    cache = tmp_path / "cache"
    env = {"VITCORE_CACHE": str(cache), "VITCORE_PROGRESS_SECONDS": "0"}
    result = run_cli("run", str(path), env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    # stderr is a pipe here (no terminal, so no tqdm bar): plain lines, the last with the full count.
    builds = [line for line in lines if line.startswith("building the decoded cache (")]
    assert len(builds) == 4, lines  # train and val: started, then done
    assert [b.split(",")[0] for b in builds] == ["building the decoded cache (12 images"] * 2 + [
        "building the decoded cache (6 images"] * 2  # the training split, then the validation split
    assert re.fullmatch(r"building the decoded cache \(12 images, 32 px, in .*decoded\) \.\.\.", builds[0])
    assert re.fullmatch(r"building the decoded cache \(12 images, 32 px, in .*\): done in \d+\.\d+ s", builds[1])
    assert "decoding: 0/12 img (0%), 0.00 s" in lines[lines.index(builds[0]) + 1]
    assert any(re.fullmatch(r"decoding: 12/12 img \(100%\), \d+\.\d+ s", line) for line in lines), lines
    assert "export safetensors ..." in lines and "export torch ..." in lines
    assert any(re.fullmatch(r"export safetensors: done in \d+\.\d+ s \(model\.safetensors, model\.json\)", line)
               for line in lines), lines
    assert any(re.fullmatch(r"export torch: done in \d+\.\d+ s \(model\.pt\)", line) for line in lines), lines

    again = run_cli("run", str(path), env=env)  # the cache is built: nothing to say about it
    assert again.returncode == 0, again.stderr
    assert "decoded cache" not in again.stderr


def test_a_step_says_when_it_starts_when_it_ends_and_when_it_fails():
    out = io.StringIO()
    with timed_step("export onnx", stream=out) as note:
        note.detail = "3 files"
    with pytest.raises(ValueError):
        with timed_step("draw attention_maps", stream=out):
            raise ValueError("bad")
    lines = out.getvalue().splitlines()
    assert lines[0] == "export onnx ..." and re.fullmatch(r"export onnx: done in \d\.\d\d s \(3 files\)", lines[1])
    assert lines[2] == "draw attention_maps ..."
    assert re.fullmatch(r"draw attention_maps: failed after \d\.\d\d s", lines[3])
    assert [format_seconds(s) for s in (0.421, 12.34, 245, 7380)] == ["0.42 s", "12.3 s", "4 min 05 s", "2 h 03 min"]


def test_counted_work_in_a_log_file_gets_plain_lines_and_its_final_count(monkeypatch):
    monkeypatch.setenv("VITCORE_PROGRESS_SECONDS", "3600")
    out = io.StringIO()  # not a terminal, like a log file
    with progress_bar(100, "decoding", unit="img", stream=out) as bar:
        for _ in range(10):
            bar.update(10)
    lines = out.getvalue().splitlines()
    assert [line.rsplit(",", 1)[0] for line in lines] == ["decoding: 0/100 img (0%)", "decoding: 100/100 img (100%)"]
    silent = io.StringIO()
    with progress_bar(5, "decoding", stream=silent, enabled=False) as bar:
        bar.update(5)
    assert silent.getvalue() == ""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_makefile_installs_say_what_they_install_and_keep_pip_talking():
    recipe = subprocess.run(["make", "-n", "-B", "install"], cwd=REPO, capture_output=True, text=True, check=True)
    lines = recipe.stdout.splitlines()
    pip = [line for line in lines if "pip install" in line]
    assert len(pip) == 2 and not [line for line in pip if "--quiet" in line or " -q " in line], pip
    said = [line for line in lines if line.startswith("echo ")]
    assert any("[2/3] torch 2.14.1 and torchvision 0.29.1" in line and "about a minute" in line for line in said)
    assert any("[3/3] vitcore and its plugins" in line and "a few minutes" in line for line in said)
    # Each step is announced before it runs.
    assert lines.index(next(line for line in said if "[2/3]" in line)) < lines.index(pip[0])
