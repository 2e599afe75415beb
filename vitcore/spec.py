"""The run spec: one JSON or YAML file validated by pydantic, components by their own Options.

Every component entry is ``{"type": NAME, ...options}``. The core validates the spec's shape, then
looks each NAME up in its registry and validates the remaining keys with that component's
``Options`` model, so a plugin's options get the same field-path errors as the core's.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vitcore.components import Component, Options
from vitcore.errors import SpecError, VitcoreError
from vitcore.spec_paths import Location, absolute_options, absolute_path, base_for


class ComponentSpec(BaseModel):
    """``{"type": NAME, ...options}``: options are checked by the component's own model."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="Registered name of the component (see `vitcore plugins list --all`).")

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ModelSpec(ComponentSpec):
    """The model entry: a model builder, optionally started from an earlier run's weights."""

    init_from: str | None = Field(
        None,
        description="Start from an earlier run's best weights: runs/<name>/v<N>, runs/<name> (latest) or a "
        "checkpoint file (.pt/.safetensors), relative to the spec file's folder. The head is replaced when the "
        "classes differ.",
    )


class EmaSpec(BaseModel):
    """An exponential moving average of the weights, kept beside them on the device."""

    model_config = ConfigDict(extra="forbid")

    decay: float = Field(0.9998, gt=0, lt=1, description="EMA decay per optimizer step.")
    warmup: bool = Field(
        True, description="Ramp the decay up as (1 + n) / (10 + n) over the first steps, so the average is "
        "not dominated by the random initial weights.",
    )
    best_follows_ema: bool = Field(
        True, description="best.pt (and so the exports) holds the EMA weights, chosen by the EMA's own "
        "validation metric; false: the raw weights and their metric decide.",
    )


class DistillSpec(BaseModel):
    """Knowledge distillation: the student (this run's model) learns from an earlier run's model."""

    model_config = ConfigDict(extra="forbid")

    teacher: str = Field(
        description="The teacher: runs/<name>/v<N> or runs/<name> (its latest version), relative to the spec "
        "file's folder. Its classes must be this run's; its best weights are used, in eval mode.",
    )
    kind: Literal["soft", "hard"] = Field(
        "soft", description="soft: KL divergence to the teacher's softened probabilities; hard: cross-entropy "
        "to the teacher's predicted class.",
    )
    temperature: float = Field(2.0, gt=0, description="Softening temperature of soft distillation.")
    weight: float = Field(
        0.5, ge=0, le=1, description="Share of the distillation term in the loss (the rest: the labels).",
    )


class TrainSpec(BaseModel):
    """How to train: optimisation, precision, schedule, checkpoints."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1, description="Number of passes over the training split.")
    batch_size: Union[int, Literal["auto"]] = Field(
        64,
        description="Global batch size (split across processes under torchrun). auto: on CUDA the largest "
        "batch whose real training step fits in memory (probed on a copy of the model, 90% of it kept, "
        "at most 1024 per GPU); 64 on CPU and MPS. The number chosen is saved in the run's spec.json.",
    )
    grad_accum_steps: int = Field(
        1, ge=1, description="Micro-batches accumulated per optimizer step (batch_size is per micro-batch)."
    )
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="Optimizer; fused kernels on CUDA.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate, reached after warmup.")
    min_lr: float = Field(1e-6, ge=0, description="Final learning rate of the cosine schedule.")
    weight_decay: float = Field(
        0.05, ge=0, description="Decoupled weight decay; never applied to norms, biases, position embeddings or tokens."
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    schedule: Literal["cosine", "step", "constant"] = Field(
        "cosine", description="Learning-rate schedule, applied per optimizer step."
    )
    warmup_epochs: float = Field(1.0, ge=0, description="Linear warmup from 0 to lr, in epochs.")
    step_epochs: int = Field(30, ge=1, description="step schedule: epochs between decays.")
    step_gamma: float = Field(0.1, gt=0, le=1, description="step schedule: decay factor.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy loss.")
    clip_grad_norm: float | None = Field(
        None, gt=0, description="Clip the global gradient norm to this value (null: no clipping)."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Autocast precision. auto: bf16 on CUDA devices that support it, fp32 elsewhere. fp16 uses a gradient scaler.",
    )
    compile: bool = Field(False, description="Compile the model with torch.compile.")
    channels_last: bool = Field(False, description="Use channels_last memory format for images and model.")
    device: str = Field(
        "auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."
    )
    seed: int = Field(0, description="Seed for model init, data order and augmentation.")
    deterministic: bool = Field(
        False, description="Use deterministic algorithms (slower; some ops may refuse)."
    )
    num_workers: Union[int, Literal["auto"]] = Field(
        "auto", description="Data-loader worker processes per training process (auto: by CPU count and device)."
    )
    decode: Literal["loader", "cache", "device"] = Field(
        "loader",
        description="Where images are decoded. loader: PIL in the data-loader workers (any dataset). "
        "cache: each image decoded once into a uint8 cache under VITCORE_CACHE (short side resized to "
        "image_size / crop_pct, the centre square kept), then read without decoding. device: JPEG bytes "
        "decoded on the training device (nvJPEG on CUDA) and the per-sample augmentations run there; "
        "needs a file-backed dataset (imagefolder, csv, shapes).",
    )
    augment: Literal["loader", "device"] = Field(
        "loader",
        description="Where the per-sample augmentations run. loader: image by image in the data loader (any "
        "augmentation). device: batched on the training device, each image with its own random parameters; the "
        "loader then only delivers the centre square of side image_size / crop_pct. Every listed augmentation "
        "needs a device version (random_resized_crop, resize, horizontal_flip, vertical_flip; mixup and cutmix "
        "run on the device anyway). Evaluation is the same in both.",
    )
    log_every_steps: int = Field(
        20, ge=1, description="Log training loss/accuracy every N optimizer steps (one host sync each); an epoch "
        "shorter than 2N steps logs twice per epoch instead, so short runs still draw curves."
    )
    best_metric: Literal["val_acc1", "val_acc5", "val_loss"] = Field(
        "val_acc1", description="Metric that decides best.pt (loss: lower is better)."
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many epochs without improving best_metric (null: never)."
    )
    max_steps_per_epoch: int | None = Field(
        None, ge=1, description="Cap on optimizer steps per epoch (quick trials)."
    )
    ema: EmaSpec | None = Field(
        None, description="Keep an exponential moving average of the weights (null: none), e.g. {\"decay\": 0.9998}.",
    )
    checkpoint_every_steps: int | None = Field(
        None, ge=1,
        description="Also write last.pt every N optimizer steps inside an epoch, so a kill loses at most N steps "
        "(a resume continues at the exact sample). null: only at epoch ends.",
    )
    checkpoint_every_minutes: float | None = Field(
        None, gt=0,
        description="Also write last.pt when this many minutes passed since the last one, inside an epoch "
        "(for long epochs on preemptible machines). null: only at epoch ends.",
    )

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be 'auto' or a whole number >= 1")
        return value

    @field_validator("num_workers")
    @classmethod
    def _non_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be 'auto' or a whole number >= 0")
        return value


def _default_sinks() -> list[ComponentSpec]:
    return [ComponentSpec(type="console"), ComponentSpec(type="tensorboard")]


def _default_visualizers() -> list[ComponentSpec]:
    return [ComponentSpec(type="curves"), ComponentSpec(type="confusion_matrix")]


def _default_exporters() -> list[ComponentSpec]:
    return [ComponentSpec(type="safetensors"), ComponentSpec(type="torch")]


def _default_augmentations() -> list[ComponentSpec]:
    return [ComponentSpec(type="random_resized_crop"), ComponentSpec(type="horizontal_flip")]


class RunSpec(BaseModel):
    """A complete description of one training run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Run name; versions are written to <output_dir>/<name>/v<N>.",
    )
    output_dir: str = Field(
        "runs",
        description="Root folder of run directories. Written in the spec: relative to the spec file's folder; "
        "left out: runs in the working directory (see Paths).",
    )
    data: ComponentSpec = Field(description="Dataset provider, e.g. {\"type\": \"imagefolder\", \"root\": \"data\"}.")
    model: ModelSpec = Field(description="Model builder, e.g. {\"type\": \"torchvision_vit\", \"arch\": \"vit_b_16\"}.")
    augmentations: list[ComponentSpec] = Field(
        default_factory=_default_augmentations,
        description="Training augmentations in order ([] for none). Default: random_resized_crop, horizontal_flip.",
    )
    train: TrainSpec = Field(default_factory=TrainSpec, description="Training settings (see below).")
    sinks: list[ComponentSpec] = Field(
        default_factory=_default_sinks,
        description="Metric sinks. metrics.jsonl is always written. Default: console, tensorboard.",
    )
    visualizers: list[ComponentSpec] = Field(
        default_factory=_default_visualizers,
        description="Pictures made during/after the run. Default: curves, confusion_matrix.",
    )
    exporters: list[ComponentSpec] = Field(
        default_factory=_default_exporters,
        description="Formats the best model is exported to at the end. Default: safetensors, torch.",
    )
    distill: DistillSpec | None = Field(
        None, description="Distil an earlier run's model into this one (null: plain training).",
    )
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form facts about the run (e.g. a sweep's trial and parameters), copied into summary.json as meta.",
    )


#: Spec fields holding one component, and the registry kind each names.
SINGLE_COMPONENTS = {"data": "datasets", "model": "models"}
#: Spec fields holding a list of components, and their kind.
LIST_COMPONENTS = {
    "augmentations": "augmentations",
    "sinks": "sinks",
    "visualizers": "visualizers",
    "exporters": "exporters",
}


@dataclass
class ResolvedComponent:
    type: str
    component: type[Component]
    options: Options
    plugin: str

    def instantiate(self) -> Component:
        return self.component(self.options)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.options.model_dump(mode="json")}


@dataclass
class ResolvedSpec:
    """A validated spec whose components are looked up and whose options are validated."""

    spec: RunSpec
    data: ResolvedComponent
    model: ResolvedComponent
    augmentations: list[ResolvedComponent]
    sinks: list[ResolvedComponent]
    visualizers: list[ResolvedComponent]
    exporters: list[ResolvedComponent]
    source: str = "<spec>"
    #: The folder relative paths resolved against: the spec file's (the working directory for a
    #: dict spec). Components get it as ``DataContext.spec_dir`` / ``ModelContext.spec_dir``.
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def train(self) -> TrainSpec:
        return self.spec.train

    def to_dict(self) -> dict[str, Any]:
        """The spec with every default filled in and every path absolute: saved as spec.json, so a
        run can be repeated, resumed or exported from any folder."""
        out = self.spec.model_dump(mode="json")
        out["data"] = self.data.to_dict()
        out["model"] = self.model.to_dict()
        if self.spec.model.init_from is not None:
            out["model"]["init_from"] = self.spec.model.init_from
        for field_name in LIST_COMPONENTS:
            out[field_name] = [c.to_dict() for c in getattr(self, field_name)]
        return out


# ----------------------------------------------------------------------------------------------
# Reading and error messages
# ----------------------------------------------------------------------------------------------


def format_location(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (itself, in a list or dict, or optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def known_fields(model: type[BaseModel] | None, loc: Sequence[Any]) -> list[str]:
    """The field names of the object at ``loc`` inside ``model`` (list indexes and dict keys are
    stepped over), or [] when ``loc`` leaves the models (a component's own options)."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int) or part not in model.model_fields:
            continue
        model = _nested_model(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def unknown_field_message(name: Any, candidates: Sequence[str], component: str | None = None) -> str:
    """``unknown field; did you mean 'epochs'?`` (difflib, as for component names), then where
    the fields are listed."""
    where = (f"`vitcore plugins show {component}` lists its options" if component
             else "see docs/SPEC.md")
    close = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]!r}? ({where})"
    return f"unknown field (check the spelling; {where})"


def format_validation_error(exc: ValidationError, source: str, prefix: tuple[Any, ...] = (),
                            model: type[BaseModel] | None = None, component: str | None = None,
                            extra_names: Sequence[str] = ()) -> list[str]:
    """One ``source: field.path: message`` line per error. ``model`` is the model validated (its
    fields give "did you mean" suggestions for unknown ones), ``component`` the type named in the
    spec entry, ``extra_names`` further fields the entry may hold (``type``, ``init_from``)."""
    lines = []
    for err in exc.errors():
        loc = format_location(prefix + tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            inner = tuple(err["loc"])
            candidates = known_fields(model, inner[:-1]) + (list(extra_names) if len(inner) == 1 else [])
            msg = unknown_field_message(inner[-1] if inner else "", candidates, component)
        lines.append(f"{source}: {loc}: {msg}")
    return lines


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """A spec file as a dict, with every base it ``extends`` merged in (vitcore.spec_extends)."""
    from vitcore import spec_extends

    return spec_extends.read(path, parse_spec_file).data


def parse_spec_file(path: str | Path) -> dict[str, Any]:
    """Parse one JSON or YAML spec file into a dict, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found (give the path of a .json or .yaml file)")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except Exception as exc:  # yaml.YAMLError
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be an object/mapping at the top level")
    return data


#: A field path as errors print it (``augmentations[0].p``) or dotted (``augmentations.0.p``).
_FIELD_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[\d+\])*")
_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.epochs=3`` -> (["train", "epochs"], 3); ``augmentations[0].p=0.3`` (the form
    error messages print) and ``augmentations.0.p=0.3`` -> (["augmentations", "0", "p"], 0.3).
    Values are JSON when they parse, else text."""
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected FIELD=VALUE, e.g. --set train.epochs=3")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key:
        raise SpecError(f"--set {text!r}: the field path is empty")
    if not _FIELD_PATH.fullmatch(key):
        raise SpecError(f"--set {text!r}: {key!r} is not a field path; write FIELD.FIELD, with list items as "
                        "FIELD[INDEX] or FIELD.INDEX, e.g. --set augmentations[0].p=0.3")
    parts = [index or name for index, name in _PATH_PART.findall(key)]
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = _list_item(node, part, text)
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                where = ".".join(parts[: i + 1])
                raise SpecError(f"--set {text!r}: {where} is not an object, cannot set a field inside it")
        last = parts[-1]
        if isinstance(node, list):
            index = int(last) if last.isdigit() else None
            if index is None or index >= len(node):
                raise SpecError(f"--set {text!r}: list index {last!r} out of range")
            node[index] = value
        else:
            node[last] = value
    return data


def _list_item(node: list[Any], part: str, text: str) -> Any:
    if not part.isdigit() or int(part) >= len(node):
        raise SpecError(f"--set {text!r}: {part!r} is not an index of a list of {len(node)} items")
    return node[int(part)]


def _resolve_entry(entry: ComponentSpec, kind: str, loc: Location, source: str, base_dir: Path | None = None,
                   overridden: Sequence[Sequence[str]] = ()) -> ResolvedComponent:
    from vitcore.plugins import get_host

    try:
        found = get_host().registry(kind).get(entry.type)
    except VitcoreError as exc:
        raise SpecError(f"{source}: {format_location(loc + ('type',))}: {exc}") from None
    try:
        options = found.component.Options.model_validate(entry.options())
    except ValidationError as exc:
        extra = ["type", *(name for name in type(entry).model_fields if name != "type")]
        raise SpecError("\n".join(format_validation_error(exc, source, loc, found.component.Options, entry.type,
                                                           extra))) from None
    options = absolute_options(options, loc, Path(base_dir or Path.cwd()).absolute(), overridden)
    return ResolvedComponent(entry.type, found.component, options, found.plugin)


def resolve_component(entry: dict[str, Any], kind: str, location: str, source: str = "<spec>",
                      base_dir: Path | None = None) -> ResolvedComponent:
    """Look up one ``{"type": NAME, ...}`` entry of ``kind`` and validate its options; relative
    path options resolve against ``base_dir`` (default: the working directory)."""
    try:
        parsed = ComponentSpec.model_validate(entry)
    except ValidationError as exc:
        raise SpecError("\n".join(format_validation_error(exc, source, (location,)))) from None
    return _resolve_entry(parsed, kind, (location,), source, base_dir)


def _absolute_fields(spec: RunSpec, base_dir: Path, overridden: Sequence[Sequence[str]]) -> RunSpec:
    """``output_dir`` and ``model.init_from`` made absolute (see vitcore.spec_paths for the rule)."""
    written = "output_dir" in spec.model_fields_set
    out_base = base_for(("output_dir",), base_dir, overridden) if written else Path.cwd()
    update: dict[str, Any] = {"output_dir": absolute_path(spec.output_dir, out_base)}
    if spec.model.init_from is not None:
        base = base_for(("model", "init_from"), base_dir, overridden)
        update["model"] = spec.model.model_copy(update={"init_from": absolute_path(spec.model.init_from, base)})
    if spec.distill is not None:
        base = base_for(("distill", "teacher"), base_dir, overridden)
        update["distill"] = spec.distill.model_copy(update={"teacher": absolute_path(spec.distill.teacher, base)})
    return spec.model_copy(update=update)


def resolve(data: dict[str, Any], source: str = "<spec>", base_dir: Path | None = None,
            overridden: Sequence[Sequence[str]] = ()) -> ResolvedSpec:
    """Validate a raw spec dict and every component's options; raise SpecError listing all problems.

    Relative paths resolve against ``base_dir`` (default: the working directory), except those at
    the field paths in ``overridden`` (``--set`` values), which resolve against the working directory.
    """
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError("\n".join(format_validation_error(exc, source, model=RunSpec))) from None
    base_dir = Path(base_dir or Path.cwd()).absolute()
    spec = _absolute_fields(spec, base_dir, overridden)

    problems: list[str] = []

    def resolve_one(entry: ComponentSpec, kind: str, loc: tuple[Any, ...]) -> ResolvedComponent | None:
        try:
            return _resolve_entry(entry, kind, loc, source, base_dir, overridden)
        except SpecError as exc:
            problems.append(str(exc))
            return None

    single = {f: resolve_one(getattr(spec, f), kind, (f,)) for f, kind in SINGLE_COMPONENTS.items()}
    lists = {
        f: [resolve_one(e, kind, (f, i)) for i, e in enumerate(getattr(spec, f))]
        for f, kind in LIST_COMPONENTS.items()
    }
    # metrics.jsonl is the source of truth for every plot: the jsonl sink is always on.
    if not any(r is not None and r.type == "jsonl" for r in lists["sinks"]):
        jsonl = resolve_one(ComponentSpec(type="jsonl"), "sinks", ("sinks",))
        lists["sinks"].insert(0, jsonl)
    if problems:
        raise SpecError("\n".join(problems))
    return ResolvedSpec(spec=spec, source=source, base_dir=base_dir, **single, **lists)  # type: ignore[arg-type]


def load(path: str | Path, overrides: list[str] | None = None) -> ResolvedSpec:
    """Read, override and resolve a spec file: its relative paths resolve against its folder,
    those given in ``overrides`` against the working directory."""
    return load_merged(path, overrides)[0]


def load_merged(path: str | Path, overrides: list[str] | None = None) -> tuple[ResolvedSpec, Any]:
    """``load``, and the merged spec with the source of each value (vitcore.spec_extends.Merged):
    errors name the file that set the field."""
    from vitcore import spec_extends

    overrides = list(overrides or [])
    merged = spec_extends.read(path, parse_spec_file)
    spec_extends.apply_overrides(merged, overrides)
    overridden = [parse_override(text)[0] for text in overrides]
    try:
        resolved = resolve(merged.data, source=str(path), base_dir=Path(path).absolute().parent,
                           overridden=overridden)
    except SpecError as exc:
        raise SpecError(spec_extends.attribute_errors(str(exc), merged)) from None
    return resolved, merged


def load_dict(data: dict[str, Any], overrides: list[str] | None = None, source: str = "<spec>",
              base_dir: Path | None = None) -> ResolvedSpec:
    """Resolve a spec given as a dict; relative paths resolve against ``base_dir`` (default: the
    working directory)."""
    return resolve(apply_overrides(json.loads(json.dumps(data)), list(overrides or [])), source=source,
                   base_dir=base_dir)
