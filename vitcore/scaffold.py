"""``vitcore plugins new``: write a ready-to-install plugin package with one component and its tests.

Standard library only (``string.Template``). The package installs with pip, shows up in
``vitcore plugins list`` and passes its own tests unchanged: a start that already works, to be
edited into the real thing, with the contract checks of ``vitcore.testing`` guarding the edits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from vitcore import PLUGIN_API_VERSION
from vitcore.errors import VitcoreError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
MAX_NAME_LENGTH = 40


class ScaffoldError(VitcoreError):
    """The plugin cannot be created as asked (bad name, existing folder, taken component name)."""

    exit_code = 2


@dataclass(frozen=True)
class Kind:
    """What the scaffold writes for one component kind."""

    registry: str  # the kind's registry (and key in `vitcore plugins list --json`)
    hook: str
    base: str  # the class in vitcore.api
    spec_field: str
    summary: str
    component: str  # template of vitcore_NAME/<kind>.py
    tests: str  # template of tests/test_NAME.py
    extra: dict[str, str] = field(default_factory=dict)  # more package modules: file name -> template

    @property
    def single(self) -> bool:
        return self.spec_field in ("data", "model")


def requirement() -> str:
    """The ``VITCORE_PLUGIN_API`` of new plugins: this API version up to the next major one."""
    major, minor = PLUGIN_API_VERSION.split(".")[:2]
    return f">={major}.{minor},<{int(major) + 1}"


def new_plugin(name: str, kind: str, parent: Path) -> Path:
    """Write ``parent/vitcore-NAME/`` with one ``kind`` component called NAME; return the folder."""
    if kind not in KINDS:
        raise ScaffoldError(f"--kind: {kind!r} is not a component kind; choose from {', '.join(KINDS)}")
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"NAME: {name!r} is not a valid plugin name. Use lower-case letters and digits, starting "
            f"with a letter, with single '_' or '-' between words (e.g. my_sink), at most "
            f"{MAX_NAME_LENGTH} characters"
        )
    spec = KINDS[kind]
    values = _names(name, kind)
    root = Path(parent) / values["dist"]
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another NAME or --dir, or move it away")
    _refuse_taken(values["name"], kind, spec)
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{values['module']}/__init__.py": INIT,
        f"{values['module']}/{kind}.py": spec.component,
        f"tests/test_{values['name']}.py": spec.tests,
        **{f"{values['module']}/{file}": text for file, text in spec.extra.items()},
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values), encoding="utf-8")
    return root


def _names(name: str, kind: str) -> dict[str, str]:
    """The values the templates use."""
    spec = KINDS[kind]
    component = name.replace("-", "_")
    entry = f'{{"type": "{component}"}}'
    return {
        "name": component,  # the component's name in specs
        "module": f"vitcore_{component}",
        "dist": f"vitcore-{name.replace('_', '-')}",
        "cls": "".join(part.capitalize() for part in component.split("_")) + spec.base.removesuffix("Provider"),
        "kind": kind,
        "hook": spec.hook,
        "summary": spec.summary,
        "spec_entry": f'"{spec.spec_field}": {entry if spec.single else f"[{entry}]"}',
        "api": requirement(),
    }


def _refuse_taken(component: str, kind: str, spec: Kind) -> None:
    from vitcore.plugins import get_host

    registry = get_host().registry(spec.registry)
    if component in registry:
        owner = registry.get(component).plugin
        raise ScaffoldError(f"NAME: a {kind} called {component!r} already exists (plugin {owner!r}); "
                            "choose another NAME")


# --------------------------------------------------------------------------------------------
# Files every plugin has
# --------------------------------------------------------------------------------------------

PYPROJECT = r'''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "vitcore plugin: $summary"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["vitcore"]

[project.optional-dependencies]
test = ["pytest>=8"]

# vitcore finds plugins through this entry-point group.
[project.entry-points.vitcore]
$name = "$module"

[tool.setuptools]
packages = ["$module"]
'''

README = r'''# $dist

A vitcore plugin with one $kind, `$name`: $summary.

```bash
python -m pip install -e .     # then `vitcore plugins list` shows it
python -m pytest tests         # vitcore.testing's contract checks, and this plugin's own tests
```

Use it in a spec: `{$spec_entry}`. The contract of each component kind is in vitcore's
docs/PLUGINS.md.
'''

INIT = r'''"""vitcore plugin $dist: $summary.

Importing this package stays light (no torch): `vitcore plugins list` and `vitcore --help` import
every plugin, so heavy libraries are imported inside the methods that use them.
"""

from __future__ import annotations

import vitcore
from vitcore.api import Register

from $module.$kind import $cls

#: The vitcore plugin API versions this package works with; vitcore refuses to load it elsewhere.
VITCORE_PLUGIN_API = "$api"

__version__ = "0.1.0"
__all__ = ["$cls"]


@vitcore.hookimpl
def $hook(register: Register) -> None:
    register($cls)
'''

def _tests(check: str, body: str, stdlib: str = "", third_party: str = "", vitcore: str = "") -> str:
    """tests/test_NAME.py: imports, a fixture registering the plugin, then ``body``; ``vitcore`` holds
    more names the tests take from vitcore.api, each followed by ``", "``."""
    return f'''"""Tests of the `$name` $kind: vitcore's contract checks, then its own behaviour."""

from __future__ import annotations
{stdlib}
{third_party}import pytest
from vitcore.api import {vitcore}SpecError, load_dict
from vitcore.testing import {check}, registered_plugin, tiny_spec

import $module
from $module.$kind import $cls


@pytest.fixture
def plugin():
    """The plugin, registered for the test when it is not installed."""
    with registered_plugin($module, "$dist") as info:
        yield info

{body}'''


# --------------------------------------------------------------------------------------------
# One template per kind: something small that really works
# --------------------------------------------------------------------------------------------

DATASET = r'''"""The `$name` dataset: coloured squares on grey backgrounds, drawn in memory (no files)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from pydantic import Field, field_validator
from vitcore.api import DataContext, DatasetProvider, DataSplits, Options

if TYPE_CHECKING:
    from PIL import Image

#: The colours a class can be named after.
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (230, 200, 40),
           "purple": (140, 50, 170), "orange": (240, 130, 30)}


class ${cls}Options(Options):
    classes: list[str] = Field(default_factory=lambda: ["red", "green", "blue"],
                               description="One class per colour, from: " + ", ".join(COLOURS) + ".")
    per_class: int = Field(24, ge=2, description="Pictures per class, train and validation together.")
    image_size: int = Field(32, ge=8, le=512, description="Side of the square pictures, in pixels.")
    val_fraction: float = Field(0.25, gt=0, lt=1, description="Share of each class held out for validation.")

    @field_validator("classes")
    @classmethod
    def _known_colours(cls, classes: list[str]) -> list[str]:
        unknown = [c for c in classes if c not in COLOURS]
        if unknown:
            raise ValueError(f"unknown colour(s) {', '.join(unknown)}; choose from {', '.join(COLOURS)}")
        if len(set(classes)) < 2 or len(set(classes)) != len(classes):
            raise ValueError("give at least 2 different colours")
        return classes


class Squares:
    """Map-style dataset drawing each picture on demand from its own seed: deterministic, so every
    process of a torchrun run sees the same items, and plain data, so loader workers can pickle it."""

    def __init__(self, seeds: list[str], labels: list[int], colours: list[tuple[int, int, int]], size: int) -> None:
        self.seeds, self.labels, self.colours, self.size = seeds, labels, colours, size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple["Image.Image", int]:
        from PIL import Image, ImageDraw

        rng = random.Random(self.seeds[index])
        grey = rng.randint(70, 180)
        image = Image.new("RGB", (self.size, self.size), (grey, grey, grey))
        side = rng.randint(self.size // 3, self.size // 2)
        x, y = rng.randint(0, self.size - side), rng.randint(0, self.size - side)
        label = self.labels[index]
        ImageDraw.Draw(image).rectangle((x, y, x + side - 1, y + side - 1), fill=self.colours[label])
        return image, label


class $cls(DatasetProvider):
    """Coloured squares on grey backgrounds, one class per colour, generated in memory."""

    name = "$name"
    Options = ${cls}Options
    options: ${cls}Options

    def load(self, ctx: DataContext) -> DataSplits:
        o = self.options
        n_val = min(o.per_class - 1, max(1, round(o.per_class * o.val_fraction)))
        parts: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "val": ([], [])}
        for label in range(len(o.classes)):
            for i in range(o.per_class):
                seeds, labels = parts["val" if i < n_val else "train"]
                seeds.append(f"{ctx.seed}/{label}/{i}")
                labels.append(label)
        colours = [COLOURS[c] for c in o.classes]
        return DataSplits(
            classes=list(o.classes),
            train=Squares(*parts["train"], colours, o.image_size),
            val=Squares(*parts["val"], colours, o.image_size),
        )
'''

DATASET_TESTS = _tests("check_dataset", r'''
def test_it_keeps_the_dataset_contract():
    splits = check_dataset($cls, {"per_class": 8, "classes": ["red", "blue"]})
    assert splits.classes == ["red", "blue"]
    assert (len(splits.train), len(splits.val)) == (12, 4)


def test_a_spec_can_use_it_and_bad_options_name_the_field(plugin, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["data"] = {"type": "$name", "per_class": 8}
    assert load_dict(spec).data.type == "$name"
    spec["data"]["classes"] = ["red", "pink"]
    with pytest.raises(SpecError, match="data.classes: .*unknown colour"):
        load_dict(spec)
''')

MODEL = r'''"""The `$name` model: a small Vision Transformer written in plain PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator
from vitcore.api import ModelBuilder, ModelContext, Options, Preprocessing

if TYPE_CHECKING:
    import torch


class ${cls}Options(Options):
    image_size: int = Field(32, ge=8, description="Input side in pixels.")
    patch_size: int = Field(8, ge=2, description="Side of the square patches; must divide image_size.")
    dim: int = Field(64, ge=8, description="Token width; must be divisible by heads.")
    depth: int = Field(2, ge=1, description="Number of transformer blocks.")
    heads: int = Field(2, ge=1, description="Attention heads per block.")

    @model_validator(mode="after")
    def _fits(self) -> "${cls}Options":
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size: {self.image_size} is not divisible by patch_size {self.patch_size}")
        if self.dim % self.heads:
            raise ValueError(f"dim: {self.dim} is not divisible by heads {self.heads}")
        return self


class $cls(ModelBuilder):
    """A small ViT in plain PyTorch: patch embedding, class token, pre-norm blocks, linear head."""

    name = "$name"
    Options = ${cls}Options
    options: ${cls}Options

    def build(self, ctx: ModelContext) -> "torch.nn.Module":
        from $module.network import TinyViT

        o = self.options
        return TinyViT(o.image_size, o.patch_size, o.dim, o.depth, o.heads, ctx.num_classes)

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.options.image_size)
'''

NETWORK = r'''"""The network itself, imported only when a model is built (torch is heavy to import)."""

from __future__ import annotations

import torch
from torch import nn


class TinyViT(nn.Module):
    """Images (B, 3, S, S) -> logits (B, num_classes)."""

    def __init__(self, image_size: int, patch_size: int, dim: int, depth: int, heads: int,
                 num_classes: int) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        tokens = (image_size // patch_size) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])
'''

MODEL_TESTS = _tests("check_model_builder", r'''
def test_it_keeps_the_model_builder_contract():
    model = check_model_builder($cls, {"image_size": 32, "patch_size": 8, "dim": 32, "depth": 1})
    assert sum(p.numel() for p in model.parameters()) < 100_000


def test_a_spec_can_use_it_and_bad_options_name_the_field(plugin, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["model"] = {"type": "$name", "image_size": 32}
    assert load_dict(spec).model.type == "$name"
    spec["model"]["patch_size"] = 7
    with pytest.raises(SpecError, match="image_size: 32 is not divisible by patch_size 7"):
        load_dict(spec)
''')

AUGMENTATION = r'''"""The `$name` augmentation: invert a training picture's colours with probability p."""

from __future__ import annotations

from typing import Callable

from pydantic import Field
from vitcore.api import Augmentation, AugmentationContext, Options


class ${cls}Options(Options):
    p: float = Field(0.5, ge=0, le=1, description="Probability of inverting a picture's colours.")


class $cls(Augmentation):
    """Invert the colours of a training picture with probability p (per sample, in the loader)."""

    name = "$name"
    Options = ${cls}Options
    options: ${cls}Options

    def sample_transform(self, ctx: AugmentationContext) -> Callable:
        from torchvision.transforms import v2

        return v2.RandomInvert(p=self.options.p)
'''

AUGMENTATION_TESTS = _tests("check_augmentation", r'''
def test_it_keeps_the_augmentation_contract():
    check_augmentation($cls, {"p": 0.5})


def test_p_one_inverts_every_picture():
    ctx = AugmentationContext(preprocessing=Preprocessing(32), num_classes=3)
    transform = $cls($cls.Options(p=1.0)).sample_transform(ctx)
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    assert torch.equal(transform(image), 255 - image)


def test_a_spec_can_use_it_and_bad_options_name_the_field(plugin, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["augmentations"] = [{"type": "$name", "p": 0.3}]
    assert load_dict(spec).augmentations[0].type == "$name"
    spec["augmentations"][0]["p"] = 1.5
    with pytest.raises(SpecError, match=r"augmentations\[0\]\.p"):
        load_dict(spec)
''', third_party="import torch\n",
   vitcore="AugmentationContext, Preprocessing, ")

SINK = r'''"""The `$name` metric sink: one CSV row per epoch, with the columns you choose."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping

from pydantic import Field, field_validator
from vitcore.api import MetricSink, Options, SinkContext


class ${cls}Options(Options):
    filename: str = Field("epochs.csv", description="CSV file in the run directory.")
    columns: list[str] = Field(default_factory=lambda: ["epoch", "step", "train_loss", "val_loss", "val_acc1"],
                               min_length=1, description="Fields of the epoch records to write, in order.")

    @field_validator("filename")
    @classmethod
    def _plain_csv_name(cls, filename: str) -> str:
        if Path(filename).name != filename or not filename.endswith(".csv"):
            raise ValueError(f"{filename!r}: give a plain file name ending in .csv")
        return filename


class $cls(MetricSink):
    """One CSV row per epoch; a resumed run keeps the rows up to the step it continues from."""

    name = "$name"
    Options = ${cls}Options
    options: ${cls}Options

    def open(self, ctx: SinkContext) -> None:
        self.path = ctx.run_dir / self.options.filename
        if ctx.resumed and self.path.is_file():
            self._drop_rows_after(ctx.start_step)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        self.handle = open(self.path, "a", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        if new:
            self.writer.writerow(self.options.columns)

    def log(self, record: Mapping[str, Any]) -> None:
        if record.get("event") == "epoch":
            self.writer.writerow([record.get(column, "") for column in self.options.columns])
            self.handle.flush()

    def close(self) -> None:
        # Also called when the run failed before open() (or inside it): then there is no file.
        handle = getattr(self, "handle", None)
        if handle is not None:
            handle.close()

    def _drop_rows_after(self, step: int) -> None:
        """Records after ``step`` were discarded by the resume; so are their rows."""
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows or "step" not in rows[0]:
            return
        at = rows[0].index("step")
        kept = [row for row in rows[1:] if len(row) > at and row[at] and float(row[at]) <= step]
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([rows[0], *kept])
'''

SINK_TESTS = _tests("check_metric_sink", r'''
def test_it_keeps_the_metric_sink_contract(tmp_path):
    run_dir = check_metric_sink($cls, {"filename": "log.csv"}, tmp_path)
    with open(run_dir / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"]  # one per epoch, across the resume
    assert float(rows[-1]["val_acc1"]) > 0


def test_a_spec_can_use_it_and_bad_options_name_the_field(plugin, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["sinks"] = [{"type": "$name"}]
    assert load_dict(spec).sinks[-1].type == "$name"
    spec["sinks"][0]["filename"] = "../outside.csv"
    with pytest.raises(SpecError, match=r"sinks\[0\]\.filename"):
        load_dict(spec)
''', stdlib="\nimport csv\n")

VISUALIZER = r'''"""The `$name` visualizer: a histogram of the model's weights, drawn at the end of a run."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from vitcore.api import Options, Visualizer, VisualizerContext


class ${cls}Options(Options):
    bins: int = Field(60, ge=5, le=1000, description="Number of histogram bars.")
    log_count: bool = Field(True, description="Logarithmic count axis (most weights sit near 0).")


class $cls(Visualizer):
    """Histogram of the weights of every matrix and convolution of the model ($name.png)."""

    name = "$name"
    Options = ${cls}Options
    options: ${cls}Options
    needs_model = True  # `vitcore plot` (metrics only) skips it

    def render(self, ctx: VisualizerContext) -> list[Path]:
        if ctx.model is None:
            return []
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
        import torch

        with torch.no_grad():
            weights = torch.cat([p.flatten().float().cpu() for p in ctx.model.parameters() if p.ndim > 1])
        figure, ax = plt.subplots(figsize=(6, 4))
        ax.hist(weights.numpy(), bins=self.options.bins, log=self.options.log_count)
        ax.set(title="Weights" + (" (final)" if ctx.final else f" after epoch {ctx.epoch}"),
               xlabel="value", ylabel="count")
        path = ctx.out_dir / "$name.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        return [path]
'''

VISUALIZER_TESTS = _tests("check_visualizer", r'''
def test_it_keeps_the_visualizer_contract(tmp_path):
    [path] = check_visualizer($cls, {"bins": 20}, tmp_path)
    assert path.name == "$name.png"


def test_without_a_model_it_draws_nothing(tmp_path):
    ctx = VisualizerContext(run_dir=tmp_path, records=[], classes=["a", "b"])
    assert $cls($cls.Options()).render(ctx) == []


def test_a_spec_can_use_it_and_bad_options_name_the_field(plugin, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["visualizers"] = [{"type": "$name"}]
    assert load_dict(spec).visualizers[0].type == "$name"
    spec["visualizers"][0]["bins"] = 1
    with pytest.raises(SpecError, match=r"visualizers\[0\]\.bins"):
        load_dict(spec)
''', vitcore="VisualizerContext, ")

EXPORTER = r'''"""The `$name` exporter: the weights as NumPy arrays in one .npz file, readable without torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from vitcore.api import ExportContext, Exporter, Options


class ${cls}Options(Options):
    filename: str = Field("weights.npz", description="File name under exports/.")
    dtype: Literal["float32", "float16"] = Field("float32", description="Precision of floating-point weights.")

    @field_validator("filename")
    @classmethod
    def _plain_npz_name(cls, filename: str) -> str:
        if Path(filename).name != filename or not filename.endswith(".npz"):
            raise ValueError(f"{filename!r}: give a plain file name ending in .npz")
        return filename


class $cls(Exporter):
    """exports/weights.npz: the class names and every weight (as weights/<name>) as NumPy arrays."""

    name = "$name"
    Options = ${cls}Options
    options: ${cls}Options

    def export(self, ctx: ExportContext) -> list[Path]:
        import numpy as np

        arrays = {"classes": np.array(ctx.classes)}
        for key, tensor in ctx.model.state_dict().items():
            array = tensor.detach().cpu().numpy()
            arrays[f"weights/{key}"] = array.astype(self.options.dtype) if array.dtype.kind == "f" else array
        path = ctx.out_dir / self.options.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(partial, path)  # readers never see half a file
        return [path]
'''

EXPORTER_TESTS = _tests("check_exporter", r'''
def test_it_keeps_the_exporter_contract(tmp_path):
    [path] = check_exporter($cls, {"dtype": "float16"}, tmp_path)
    with np.load(path) as archive:
        assert len(archive["classes"]) >= 2
        weights = [archive[key] for key in archive.files if key.startswith("weights/")]
    assert weights and all(w.dtype == np.float16 for w in weights if w.dtype.kind == "f")


def test_a_spec_can_use_it_and_bad_options_name_the_field(plugin, tmp_path):
    spec = tiny_spec(tmp_path)
    spec["exporters"] = [{"type": "$name"}]
    assert load_dict(spec).exporters[0].type == "$name"
    spec["exporters"][0]["filename"] = "weights.txt"
    with pytest.raises(SpecError, match=r"exporters\[0\]\.filename"):
        load_dict(spec)
''', third_party="import numpy as np\n")

#: The kinds ``--kind`` accepts, singular as in "a sink".
KINDS: dict[str, Kind] = {
    "dataset": Kind("datasets", "register_datasets", "DatasetProvider", "data",
                    "coloured squares on grey backgrounds, generated in memory", DATASET, DATASET_TESTS),
    "model": Kind("models", "register_models", "ModelBuilder", "model",
                  "a small Vision Transformer in plain PyTorch", MODEL, MODEL_TESTS, {"network.py": NETWORK}),
    "augmentation": Kind("augmentations", "register_augmentations", "Augmentation", "augmentations",
                         "inverts a training picture's colours with probability p", AUGMENTATION,
                         AUGMENTATION_TESTS),
    "sink": Kind("sinks", "register_metric_sinks", "MetricSink", "sinks",
                 "one CSV row per epoch with the chosen columns", SINK, SINK_TESTS),
    "visualizer": Kind("visualizers", "register_visualizers", "Visualizer", "visualizers",
                       "a histogram of the model's weights", VISUALIZER, VISUALIZER_TESTS),
    "exporter": Kind("exporters", "register_exporters", "Exporter", "exporters",
                     "the weights as NumPy arrays in one .npz file", EXPORTER, EXPORTER_TESTS),
}
