"""The contract kit (vitcore.testing): built-in components pass it, broken ones fail it with a
message naming the rule, plugins register temporarily, and the plugin API version is enforced."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest
import torch
from PIL import Image

import vitcore
from vitcore import plugins
from vitcore.builtin.datasets import ImageFolderDataset
from vitcore.builtin.exporters import SafetensorsExporter, TorchExporter
from vitcore.builtin.models import TorchvisionViT
from vitcore.builtin.plots import ConfusionMatrix, Curves
from vitcore.builtin.shapes import ShapesDataset
from vitcore.builtin.sinks import ConsoleSink, CsvSink, JsonlSink, TensorBoardSink
from vitcore.builtin.transforms import CutMix, HorizontalFlip, MixUp, RandomResizedCrop
from vitcore.components import (
    Augmentation,
    DatasetProvider,
    DataSplits,
    Exporter,
    MetricSink,
    ModelBuilder,
    Options,
    Preprocessing,
    Visualizer,
)
from vitcore.errors import SpecError
from vitcore.plugins import api_problem, api_satisfies
from vitcore.spec import load_dict
from vitcore.testing import (
    TINY_VIT,
    check_augmentation,
    check_dataset,
    check_exporter,
    check_metric_sink,
    check_model_builder,
    check_visualizer,
    make_image_folder,
    registered_plugin,
    tiny_spec,
)

TINY = {k: v for k, v in TINY_VIT.items() if k != "type"}

# -- the built-in components keep their contracts ------------------------------------------------


def test_builtin_datasets_keep_the_dataset_contract(tmp_path):
    root = make_image_folder(tmp_path / "data", per_class=4)
    assert check_dataset(ImageFolderDataset, {"root": str(root)}).classes == ["blue", "green", "red"]
    shapes = {"classes": ["circle", "square"], "train_per_class": 3, "val_per_class": 2, "image_size": 16}
    splits = check_dataset(ShapesDataset, shapes)
    assert (len(splits.train), len(splits.val)) == (6, 4)


def test_torchvision_vit_keeps_the_model_builder_contract():
    model = check_model_builder(TorchvisionViT, TINY)
    assert model.heads.head.out_features == 2  # the first class count checked


@pytest.mark.parametrize("component", [HorizontalFlip, RandomResizedCrop, MixUp, CutMix])
def test_builtin_augmentations_keep_the_augmentation_contract(component):
    check_augmentation(component)


@pytest.mark.parametrize(("component", "written"), [
    (JsonlSink, "metrics.jsonl"), (CsvSink, "metrics_epoch.csv"), (TensorBoardSink, "tb"), (ConsoleSink, None),
])
def test_builtin_sinks_keep_the_metric_sink_contract(component, written, tmp_path, capsys):
    run_dir = check_metric_sink(component, None, tmp_path)
    if component is JsonlSink:  # the resume dropped nothing it should keep and doubled nothing
        events = [json.loads(line)["event"] for line in (run_dir / written).read_text().splitlines()]
        assert events == ["train", "train", "epoch", "train", "train", "epoch"]
    elif component is CsvSink:
        with open(run_dir / written, newline="") as handle:
            assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]
    elif written:
        assert any((run_dir / written).iterdir())
    else:
        assert capsys.readouterr().out.count("epoch") == 2


@pytest.mark.parametrize(("component", "picture"), [(Curves, "curves.png"), (ConfusionMatrix, "confusion_matrix.png")])
def test_builtin_visualizers_keep_the_visualizer_contract(component, picture, tmp_path):
    assert [p.name for p in check_visualizer(component, None, tmp_path)] == [picture]


@pytest.mark.parametrize(("component", "files"), [
    (SafetensorsExporter, ["model.safetensors", "model.json"]), (TorchExporter, ["model.pt"]),
])
def test_builtin_exporters_keep_the_exporter_contract(component, files, tmp_path):
    assert [p.name for p in check_exporter(component, None, tmp_path)] == files


# -- broken components fail with the rule they break ---------------------------------------------


class _Pictures:
    def __init__(self, labels: list[Any], image: Any = None) -> None:
        self.labels, self.image = labels, image

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.image if self.image is not None else Image.new("RGB", (8, 8), (index * 9 % 255, 0, 0))
        return image, self.labels[index]


class _LabelOutOfRange(DatasetProvider):
    name = "out_of_range"

    def load(self, ctx):
        return DataSplits(classes=["a", "b", "c"], train=_Pictures([0, 1, 3]), val=_Pictures([0, 1]))


class _Tensors(DatasetProvider):
    name = "tensors"

    def load(self, ctx):
        return DataSplits(classes=["a", "b"], train=_Pictures([0, 1], torch.zeros(3, 8, 8)), val=_Pictures([0]))


class _OrderChanges(DatasetProvider):
    name = "order_changes"
    loads = 0

    def load(self, ctx):
        type(self).loads += 1
        labels = [0] * 5 + [1] * 5
        labels = labels if self.loads % 2 else labels[::-1]
        return DataSplits(classes=["a", "b"], train=_Pictures(labels), val=_Pictures([1, 0]))


class _WrongShape(ModelBuilder):
    name = "wrong_shape"

    def build(self, ctx):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, ctx.num_classes + 1))

    def preprocessing(self):
        return Preprocessing(16)


class _EvalMode(_WrongShape):
    name = "eval_mode"

    def build(self, ctx):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, ctx.num_classes)).eval()


class _ToFloat:
    def __call__(self, image):
        return image.float() / 255


class _FloatOut(Augmentation):
    name = "float_out"

    def sample_transform(self, ctx):
        return _ToFloat()


class _Lambda(Augmentation):
    name = "lambda"

    def sample_transform(self, ctx):
        return lambda image: image


class _HardTargets(Augmentation):
    name = "hard_targets"

    def batch_transform(self, ctx):
        return lambda images, targets: (images, torch.ones(len(targets), ctx.num_classes))


class _MutatingSink(MetricSink):
    name = "mutating"

    def log(self, record):
        record.pop("plugin_metric", None)


class _OutsideExporter(Exporter):
    name = "outside"

    def export(self, ctx):
        path = ctx.run_dir / "model.bin"
        path.write_bytes(b"weights")
        return [path]


class _SilentExporter(Exporter):
    name = "silent"

    def export(self, ctx):
        return []


class _BlankVisualizer(Visualizer):
    name = "blank"

    def render(self, ctx):
        path = ctx.out_dir / "blank.png"
        Image.new("RGB", (20, 20), "white").save(path)
        return [path]


class _TupleOptions(Options):
    window: Any = (1, 2)


class _LossyOptionsSink(MetricSink):
    name = "lossy"
    Options = _TupleOptions

    def log(self, record):
        pass


@pytest.mark.parametrize(("check", "component", "message"), [
    (check_dataset, _LabelOutOfRange, r"train\[2\]: label 3 is outside 0..2"),
    (check_dataset, _Tensors, "the image is a Tensor; return a PIL image"),
    (check_dataset, _OrderChanges, "another label on a second load"),
    (check_model_builder, _WrongShape, r"expected a \(2, 2\) tensor of logits"),
    (check_model_builder, _EvalMode, "in training mode"),
    (check_augmentation, _FloatOut, "it must return a uint8"),
    (check_augmentation, _Lambda, "does not pickle"),
    (check_augmentation, _HardTargets, "summing to 1"),
    (check_metric_sink, _MutatingSink, "changed the record"),
    (check_metric_sink, _LossyOptionsSink, "changes in a JSON round trip"),
    (check_exporter, _OutsideExporter, "lies outside"),
    (check_exporter, _SilentExporter, "must return the list of Paths"),
    (check_visualizer, _BlankVisualizer, "is blank"),
    (check_exporter, Curves, "not a subclass of vitcore.components.Exporter"),
])
def test_a_broken_component_fails_with_the_rule_it_breaks(check, component, message, tmp_path):
    needs_folder = check in (check_metric_sink, check_exporter, check_visualizer)
    args = (component, None, tmp_path) if needs_folder else (component,)
    with pytest.raises(AssertionError, match=message):
        check(*args)


def test_options_the_component_rejects_are_reported():
    with pytest.raises(AssertionError, match="TorchvisionViT.Options rejects"):
        check_model_builder(TorchvisionViT, {"depth": 0})


# -- registered_plugin ----------------------------------------------------------------------------


class _Shouter(MetricSink):
    name = "shouter"

    def log(self, record):
        pass


class _ShouterPlugin:
    @vitcore.hookimpl
    def register_metric_sinks(self, register):
        register(_Shouter)


def test_registered_plugin_is_usable_in_a_spec_and_removed_afterwards(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["sinks"] = [{"type": "shouter"}]
    with registered_plugin(_ShouterPlugin(), "shouter-plugin") as info:
        assert info.components == {"sinks": ["shouter"]}
        assert load_dict(spec).sinks[-1].plugin == "shouter-plugin"
    host = plugins.get_host()
    assert "shouter-plugin" not in host.infos and "shouter" not in host.registry("sinks")
    with pytest.raises(SpecError, match="unknown sink 'shouter'"):
        load_dict(spec)


def test_registered_plugin_leaves_a_loaded_plugin_in_place():
    import vitcore.builtin.sinks as builtin_sinks

    with registered_plugin(builtin_sinks, "ignored") as info:
        assert info.name == "vitcore.builtin.sinks"
    assert "jsonl" in plugins.get_host().registry("sinks")


class _Impostor(MetricSink):
    name = "jsonl"


class _ImpostorPlugin:
    @vitcore.hookimpl
    def register_metric_sinks(self, register):
        register(_Impostor)


def test_registered_plugin_reports_a_plugin_that_does_not_load_cleanly():
    with pytest.raises(AssertionError, match="registered twice"):
        with registered_plugin(_ImpostorPlugin(), "impostor"):
            pass  # pragma: no cover - never reached
    assert "impostor" not in plugins.get_host().infos
    assert plugins.get_host().registry("sinks").get("jsonl").component is JsonlSink


# -- the plugin API version ------------------------------------------------------------------------


@pytest.mark.parametrize(("requirement", "provided", "expected"), [
    (">=1.0,<2", "1.0", True), (">=1.0,<2", "1.7", True), (">=1.0,<2", "2.0", False), ("<2", "1.99", True),
    (">=1.2", "1.1", False), ("==1", "1.0", True), ("!=1.0", "1.0", False), (" >= 1.0 , < 2 ", "1.0", True),
])
def test_requirements_are_simple_version_clauses(requirement, provided, expected):
    assert api_satisfies(requirement, provided) is expected


@pytest.mark.parametrize("requirement", ["1.0", ">=1.x", ">=1.0,", "~=1.0", 1])
def test_a_malformed_requirement_says_how_to_write_one(requirement):
    message = api_problem(requirement)
    assert message is not None and "is not a version requirement" in message and "'>=1.0,<2'" in message


class _FuturePlugin:
    VITCORE_PLUGIN_API = ">=2.0"

    @vitcore.hookimpl
    def register_metric_sinks(self, register):
        register(_Shouter)


def test_a_plugin_needing_another_api_is_refused_at_load_time_naming_both_versions():
    info = plugins.get_host().register_plugin(_FuturePlugin(), name="future")
    assert info.status == "error" and not info.hooks and not info.components
    assert "needs vitcore plugin API >=2.0" in info.errors[0]
    assert f"provides plugin API {vitcore.PLUGIN_API_VERSION}" in info.errors[0]
    assert info.to_dict()["api"] == {"provided": vitcore.PLUGIN_API_VERSION, "required": ">=2.0"}
    assert "shouter" not in plugins.get_host().registry("sinks")


def test_a_plugin_declaring_the_current_api_loads():
    current = type("Current", (_ShouterPlugin,), {"VITCORE_PLUGIN_API": f"=={vitcore.PLUGIN_API_VERSION}"})
    info = plugins.get_host().register_plugin(current(), name="current")
    assert info.status == "ok" and info.components == {"sinks": ["shouter"]}
