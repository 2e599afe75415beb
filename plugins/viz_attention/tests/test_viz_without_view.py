"""A model no plugin describes as a ViT (no `vit_view` answer): the visualizers say so and skip,
in a run and in `vitcore visualize`, instead of writing nothing without a word."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from vitcore_viz_attention.commands import add_commands

import vitcore
from vitcore.api import ModelBuilder, Preprocessing
from vitcore.testing import command_group, registered_plugin, tiny_spec, train_spec


class _Pooled(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(images.mean(dim=(2, 3)))


class _PlainModel(ModelBuilder):
    """A classifier that is no ViT, from a plugin that answers no vit_view."""

    name = "plain_pooled"

    def build(self, ctx):
        return _Pooled(ctx.num_classes)

    def preprocessing(self):
        return Preprocessing(image_size=32)


class _Plugin:
    @vitcore.hookimpl
    def register_models(self, register):
        register(_PlainModel)


WARNING = (r"attention_maps: no installed plugin describes a _Pooled as a ViT \(vit_view hook\), so there is "
           r"nothing to look inside; skipped")


def test_attention_maps_warn_and_skip_when_no_plugin_describes_the_model(tmp_path):
    spec = tiny_spec(tmp_path, epochs=1)
    spec["model"] = {"type": "plain_pooled"}
    spec["sinks"], spec["exporters"] = [], []
    spec["visualizers"] = [{"type": "attention_maps", "num_samples": 1}]
    with registered_plugin(_Plugin(), "plain-model"):
        with pytest.warns(UserWarning, match=WARNING):
            result = train_spec(spec)
        assert result.summary["status"] == "completed"
        assert not list((result.run_dir / "viz").glob("attention_maps*"))  # a missing folder globs to nothing

        cli = command_group(add_commands)
        with pytest.warns(UserWarning, match=WARNING):
            shown = CliRunner().invoke(cli, ["visualize", str(result.run_dir), "--only", "attention_maps"],
                                       catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == "", "no picture to list"
    assert "draw attention_maps: done in" in shown.stderr and "(0 pictures)" in shown.stderr
