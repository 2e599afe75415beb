"""``vitcore visualize`` and ``vitcore report`` on a trained run."""

from __future__ import annotations

import base64
import re

import pytest
from click.testing import CliRunner
from vitcore_viz_attention.commands import add_commands

from vitcore.testing import command_group, run_cli


@pytest.fixture
def cli():
    return command_group(add_commands)


def test_visualize_draws_the_run_s_validation_images_into_viz(cli, shapes_run):
    result = CliRunner().invoke(cli, ["visualize", str(shapes_run), "--only", "attention_maps",
                                      "--only", "patch_embedding", "--count", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = [line.rsplit("/", 1)[-1] for line in result.stdout.split()]  # stdout: the pictures only
    assert names == ["attention_maps_0.png", "attention_maps_1.png", "patch_embedding.png"]
    assert all((shapes_run / "viz" / name).is_file() for name in names)
    # stderr: each step, then its time (the first imports torch and loads the model).
    steps = result.stderr.splitlines()
    assert steps[0] == f"load the best model of {shapes_run} ..."
    assert any(re.fullmatch(rf"load the best model of {re.escape(str(shapes_run))}: done in \d+\.\d+ s", line)
               for line in steps), steps
    assert any(re.fullmatch(r"read the run's validation images: done in \d+\.\d+ s \(2 images\)", line)
               for line in steps), steps
    assert "draw attention_maps ..." in steps and "draw patch_embedding ..." in steps
    assert any(re.fullmatch(r"draw attention_maps: done in \d+\.\d+ s \(2 pictures\)", line) for line in steps)
    assert any(re.fullmatch(r"draw patch_embedding: done in \d+\.\d+ s \(1 picture\)", line) for line in steps)


def test_visualize_given_images_with_options_into_another_folder(cli, shapes_run, tmp_path):
    picture = next((shapes_run.parent.parent.parent / "shapes" / "val" / "cross").glob("*.png"))
    out = tmp_path / "pictures"
    result = CliRunner().invoke(cli, ["visualize", str(shapes_run), str(picture), "--out", str(out),
                                      "--only", "attention_rollout", "--option", "attention_rollout.head_fusion=max",
                                      "--option", "attention_rollout.discard_ratio=0.5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [str(out / "attention_rollout.png")]
    assert "read 1 image ..." in result.stderr.splitlines()


@pytest.mark.parametrize("option, message", [
    ("nope.head_fusion=max", "NAME.FIELD=VALUE"),
    ("attention_rollout.head_fusion=median", "head_fusion"),
])
def test_visualize_rejects_bad_options_clearly(cli, shapes_run, option, message):
    result = CliRunner().invoke(cli, ["visualize", str(shapes_run), "--only", "attention_rollout",
                                      "--option", option])
    assert result.exit_code != 0
    assert message in result.output


def test_report_is_one_html_file_with_every_picture_embedded(cli, shapes_run, tmp_path):
    viz = tmp_path / "viz"
    CliRunner().invoke(cli, ["visualize", str(shapes_run), "--out", str(viz), "--only", "fc_layers",
                             "--only", "attention_stats", "--count", "2"], catch_exceptions=False)
    result = CliRunner().invoke(cli, ["report", str(shapes_run), "--viz", str(viz)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = shapes_run / "report.html"
    assert result.stdout.strip() == str(report)
    steps = result.stderr.splitlines()
    assert steps[0] == f"write the report of {shapes_run} ..."
    assert re.fullmatch(rf"write the report of {re.escape(str(shapes_run))}: done in \d+\.\d+ s "
                        r"\(\d+ pictures embedded, \d+\.\d MB\)", steps[-1]), steps
    page = report.read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    pictures = [p.name for p in sorted((shapes_run / "plots").glob("*.png"))] + [p.name for p in viz.glob("*.png")]
    assert len(embedded) == len(pictures) == 2 + 6, pictures  # curves, confusion; attention stats, fc layers
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in embedded)
    for text in ("curves.png", "confusion_matrix.png", "attention_entropy.png", "fc_spectra.png",
                 "Geometry: 32x32 input, 4x4 patches -&gt; 8x8 grid = 64 patches + 1 prefix token = 65 tokens",
                 "encoder_layer_0", "shapes-tiny"):
        assert text in page, text
    assert "http" not in page.replace("http-equiv", ""), "self-contained: nothing fetched"
    assert not list(shapes_run.glob(".report.html.*")), "no temporary file left behind"


def test_the_installed_vitcore_command_has_both_commands():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+visualize\s", result.stdout, re.M) and re.search(r"^\s+report\s", result.stdout, re.M)
