"""One preflight for validate and run: every rule a run enforces after its spec validated is
refused by `vitcore validate` with exit 2 naming the field, and by `vitcore run` with exit 2
before any run folder exists. One test per rule of vitcore.preflight.RULES (and per component
rule the in-repo plugins declare); the commands run in-process through click, one in a real
child process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import vitcore
from vitcore.cli import main
from vitcore.components import DatasetProvider, DataSplits, PreflightContext
from vitcore.preflight import RULES, preflight, problems_of
from vitcore.spec import load, load_dict
from vitcore.testing import TINY_VIT, make_image_folder, registered_plugin, run_cli, tiny_spec, write_spec


def refused(tmp_path: Path, spec: dict, field: str, *overrides: str, env: dict | None = None) -> str:
    """validate and run both exit 2 naming ``field``; run leaves no version folder. Returns validate's message."""
    path = write_spec(tmp_path / "spec.json", spec)
    args = [a for o in overrides for a in ("--set", o)]
    runner = CliRunner()
    checked = runner.invoke(main, ["validate", str(path), *args], env=env)
    assert checked.exit_code == 2, checked.output
    assert f"{path}: {field}: " in checked.stderr, checked.stderr
    ran = runner.invoke(main, ["run", str(path), *args], env=env)
    assert ran.exit_code == 2, ran.output
    assert f"{field}: " in ran.stderr and "Traceback" not in ran.output, ran.output
    runs = Path(spec["output_dir"])
    assert not list(runs.glob("*/v*")), f"run folders left: {list(runs.glob('*/v*'))}"
    return checked.stderr


def test_every_rule_has_a_test_here():
    source = Path(__file__).read_text(encoding="utf-8")
    untested = [rule.__name__ for rule in RULES if f"def test_{rule.__name__}" not in source]
    assert untested == []


def test_a_good_spec_passes_both_and_validate_loads_nothing_with_spec_only(tmp_path):
    path = write_spec(tmp_path / "spec.json", tiny_spec(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["validate", str(path)]).exit_code == 0
    # --spec-only: the data set is not read, so a folder that is gone does not matter.
    spec = tiny_spec(tmp_path)
    spec["data"]["root"] = str(tmp_path / "gone")
    gone = write_spec(tmp_path / "gone.json", spec)
    assert runner.invoke(main, ["validate", str(gone), "--spec-only"]).exit_code == 0
    missing = runner.invoke(main, ["validate", str(gone)])
    assert missing.exit_code == 1 and "gone does not exist" in missing.stderr  # the provider's own error


def test_device_exists(tmp_path):
    if torch.backends.mps.is_available():  # pragma: no cover - macOS
        pytest.skip("this machine has an mps device")
    message = refused(tmp_path, tiny_spec(tmp_path, device="mps"), "train.device")
    assert "mps was asked for but is not available here" in message
    spec = tiny_spec(tmp_path, device="tpu-ish")
    assert "is not a device" in refused(tmp_path, spec, "train.device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_index_exists_on_a_gpu_machine(tmp_path):  # pragma: no cover - GPU machines
    spec = tiny_spec(tmp_path, device=f"cuda:{torch.cuda.device_count()}")
    assert "CUDA device(s)" in refused(tmp_path, spec, "train.device")


def test_precision_fits_device(tmp_path):
    message = refused(tmp_path, tiny_spec(tmp_path, device="cpu", precision="fp16"), "train.precision")
    assert "fp16 needs a GPU" in message


def test_batch_divides_among_processes(tmp_path):
    env = {"WORLD_SIZE": "3", "RANK": "0", "LOCAL_RANK": "0"}
    message = refused(tmp_path, tiny_spec(tmp_path, batch_size=4), "train.batch_size", env=env)
    assert "4 is not divisible by the 3 processes" in message


def test_augmentations_run_on_device(tmp_path):
    spec = tiny_spec(tmp_path, augment="device")
    spec["augmentations"] = [{"type": "color_jitter"}, {"type": "horizontal_flip"}, {"type": "random_erasing"}]
    message = refused(tmp_path, spec, "train.augment")
    # Every augmentation without a device version is named, not only the first.
    assert "augmentations[0] (color_jitter) has no device version" in message
    assert "augmentations[2] (random_erasing) has no device version" in message
    assert "augmentations[1]" not in message


def test_augmentations_run_on_device_in_a_real_child_process(tmp_path):
    spec = tiny_spec(tmp_path, augment="device")
    spec["augmentations"] = [{"type": "color_jitter"}]
    path = write_spec(tmp_path / "spec.json", spec)
    checked = run_cli("validate", str(path))
    assert checked.returncode == 2 and f"{path}: train.augment: " in checked.stderr
    ran = run_cli("run", str(path))
    assert ran.returncode == 2 and "color_jitter" in ran.stderr and "Traceback" not in ran.stderr
    assert not (tmp_path / "runs").exists()


def test_init_from_has_a_checkpoint(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["model"]["init_from"] = str(tmp_path / "nowhere")
    assert "nowhere does not exist" in refused(tmp_path, spec, "model.init_from")
    empty = tmp_path / "old" / "tiny" / "v1"
    empty.mkdir(parents=True)
    (empty / "spec.json").write_text("{}")
    spec["model"]["init_from"] = str(empty)
    assert "has no checkpoint yet" in refused(tmp_path, spec, "model.init_from")


def test_init_from_fits_the_model(tmp_path):
    """A checkpoint of another architecture: the run refuses it before its folder exists."""
    from safetensors.torch import save_file

    other = load_dict({"data": {"type": "shapes"}, "model": dict(TINY_VIT, embed_dim=16)}).model.instantiate()
    from vitcore.components import ModelContext

    net = other.build(ModelContext(num_classes=3, class_names=["a", "b", "c"]))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "other.safetensors"))
    spec = tiny_spec(tmp_path)
    spec["model"]["init_from"] = str(tmp_path / "other.safetensors")
    assert "does not fit this model" in refused(tmp_path, spec, "model.init_from")


def test_data_is_trainable(tmp_path):
    spec = tiny_spec(tmp_path)
    spec["data"]["root"] = str(make_image_folder(tmp_path / "one", classes=("red",)))
    assert "found 1 class(es) (red); a classifier needs at least 2" in refused(tmp_path, spec, "data")


class InMemory(DatasetProvider):
    """Pictures held in lists: no image files behind them."""

    name = "in_memory"

    def load(self, ctx):
        from PIL import Image

        images = [(Image.new("RGB", (32, 32), colour), label)
                  for label, colour in enumerate(["red", "blue"]) for _ in range(6)]
        return DataSplits(classes=["red", "blue"], train=images[::2], val=images[1::2])


class _InMemoryPlugin:
    @vitcore.hookimpl
    def register_datasets(self, register):
        register(InMemory)


def test_device_decode_has_files(tmp_path):
    spec = tiny_spec(tmp_path, decode="device")
    spec["data"] = {"type": "in_memory"}
    with registered_plugin(_InMemoryPlugin(), "in-memory-data"):
        message = refused(tmp_path, spec, "train.decode")
    assert "needs a file-backed dataset" in message


def test_an_optimizer_step_per_epoch(tmp_path):
    message = refused(tmp_path, tiny_spec(tmp_path, grad_accum_steps=50), "train.grad_accum_steps")
    assert "50 micro-batches per step but only 3 per epoch (12 training images, batch_size 4)" in message


def test_components_agree(tmp_path):
    """A component's own rule (Component.preflight): attention_maps' patch and blocks must exist in
    the model; once refused after training, now before it."""
    pytest.importorskip("vitcore_viz_attention")
    spec = tiny_spec(tmp_path)
    spec["visualizers"] = [{"type": "curves"}, {"type": "attention_maps", "query_patch": [4, 0], "layers": [0, 1]}]
    message = refused(tmp_path, spec, "visualizers[1].query_patch")
    assert "[4, 0] lies outside the model's 4x4 patch grid" in message
    assert f"{tmp_path / 'spec.json'}: visualizers[1].layers: [0, 1] must name blocks 0..0" in message


def test_a_model_builders_own_cross_field_rule_exits_2(tmp_path):
    """Rules a builder can only check while building (timm: more frozen blocks than the model has)."""
    pytest.importorskip("vitcore_vit_timm")
    spec = tiny_spec(tmp_path)
    spec["model"] = {"type": "timm_vit", "name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8,
                     "depth": 2, "embed_dim": 32, "num_heads": 2, "finetune": "freeze_blocks", "freeze_blocks": 5}
    assert "5, but" in refused(tmp_path, spec, "model.freeze_blocks")


def test_preflight_reports_every_problem_at_once_and_takes_what_run_built(tmp_path):
    spec = tiny_spec(tmp_path, device="cpu", precision="fp16", augment="device", grad_accum_steps=50)
    spec["augmentations"] = [{"type": "color_jitter"}]
    resolved = load(write_spec(tmp_path / "spec.json", spec))
    fields = [field for field, _ in problems_of(resolved)]
    assert fields == ["train.precision", "train.augment"]  # the data rules need the data

    from vitcore.data_loading import load_splits

    splits = load_splits(resolved)
    fields = [field for field, _ in problems_of(resolved, splits=splits)]
    assert fields == ["train.precision", "train.augment", "train.grad_accum_steps"]
    with pytest.raises(vitcore.errors.SpecError) as caught:
        preflight(resolved, splits=splits)
    assert str(caught.value).count(f"{tmp_path / 'spec.json'}: ") == 3


def test_a_component_preflight_sees_the_spec_classes_and_model(tmp_path):
    seen: list[PreflightContext] = []

    from vitcore.components import MetricSink
    from vitcore.components import Options as BaseOptions

    class Watching(MetricSink):
        name = "watching"

        class Options(BaseOptions):
            label: str = "x"

        def log(self, record):
            pass

        def preflight(self, ctx):
            seen.append(ctx)
            return ["label: too dull", "something else"]

    class Plugin:
        @vitcore.hookimpl
        def register_metric_sinks(self, register):
            register(Watching)

    spec = tiny_spec(tmp_path)
    spec["sinks"] = [{"type": "watching"}]
    with registered_plugin(Plugin(), "watching"):
        resolved = load_dict(spec, source="s.json")
        problems = problems_of(resolved)
        assert problems == [("sinks[0].label", "too dull"), ("sinks[0]", "something else")]
        assert seen[-1].model is None and seen[-1].classes is None
        assert seen[-1].spec["sinks"][1]["type"] == "watching"
        net = torch.nn.Linear(2, 2)
        problems_of(resolved, model=net, splits=DataSplits(["a", "b"], [1], [1]))
        assert seen[-1].model is net and seen[-1].classes == ["a", "b"]
    assert json.dumps(problems)  # plain data: a sweep can report them
