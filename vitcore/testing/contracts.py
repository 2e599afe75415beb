"""Contract checks a plugin's own test suite calls: one per component kind, fed tiny real inputs.

Each check builds the component from its options as a spec does, calls it as the engine does, and
raises AssertionError naming the rule broken, so a plugin author learns of a contract break in
their own tests rather than in someone's training run. Each returns what the component produced,
for further assertions. torch is imported inside the checks: importing this module stays cheap.
"""

from __future__ import annotations

import copy
import json
import numbers
import pickle
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pydantic import ValidationError

from vitcore.components import (
    Augmentation,
    AugmentationContext,
    Component,
    DataContext,
    DatasetProvider,
    DataSplits,
    ExportContext,
    Exporter,
    MetricSink,
    ModelBuilder,
    ModelContext,
    Options,
    Preprocessing,
    SinkContext,
    Visualizer,
    VisualizerContext,
)
from vitcore.testing.data import TINY_VIT, colour_images, metric_records

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

#: Class names the checks use where a component needs some.
CLASSES = ["red", "green", "blue"]


def _require(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _label(component_cls: object) -> str:
    return component_cls.__name__ if isinstance(component_cls, type) else repr(component_cls)


def _instantiate(component_cls: type, options: Options | Mapping[str, Any] | None, base: type[Component]) -> Any:
    """``component_cls(options)`` as the spec resolver makes it, after checking the class itself.

    Options must round-trip through JSON: the resolved spec is saved as spec.json and read back
    by ``vitcore resume``, ``export`` and ``evaluate``.
    """
    _require(isinstance(component_cls, type) and issubclass(component_cls, base),
             f"{component_cls!r} is not a subclass of vitcore.components.{base.__name__}")
    label = component_cls.__name__
    _require(isinstance(component_cls.name, str) and component_cls.name,
             f"{label}.name is empty: set the name a spec uses in {{\"type\": NAME}}")
    _require(isinstance(component_cls.Options, type) and issubclass(component_cls.Options, Options),
             f"{label}.Options must subclass vitcore.components.Options (so unknown spec keys are errors)")
    raw = options.model_dump() if isinstance(options, Options) else dict(options or {})
    try:
        parsed = component_cls.Options.model_validate(raw)
    except ValidationError as exc:
        raise AssertionError(f"{label}.Options rejects {raw}: {exc}") from None
    try:
        again = component_cls.Options.model_validate(parsed.model_dump(mode="json"))
    except ValidationError as exc:
        raise AssertionError(f"{label}.Options does not survive a JSON round trip (spec.json is read "
                             f"back by vitcore resume/export): {exc}") from None
    _require(again == parsed, f"{label}.Options changes in a JSON round trip: {parsed!r} became {again!r}")
    return component_cls(parsed)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


def check_dataset(component_cls: type[DatasetProvider], options: Options | Mapping[str, Any] | None = None,
                  *, cache_dir: Path | None = None) -> DataSplits:
    """Load twice (rank 0 first, then the others, as under torchrun) and check the splits.

    Items are ``(RGB PIL image, int label within the classes)``; train and val are non-empty;
    splits pickle (data-loader workers); ``info`` is JSON; both loads agree item for item.
    """
    from vitcore.paths import cache_dir as default_cache_dir

    label = _label(component_cls)
    ctx = DataContext(cache_dir=cache_dir or default_cache_dir(), seed=0)
    splits = _instantiate(component_cls, options, DatasetProvider).load(ctx)
    _require(isinstance(splits, DataSplits),
             f"{label}.load must return vitcore.components.DataSplits, not {type(splits).__name__}")
    classes = splits.classes
    _require(isinstance(classes, list) and all(isinstance(c, str) for c in classes),
             f"{label}: DataSplits.classes must be a list of str, got {classes!r}")
    _require(len(classes) >= 2, f"{label}: {len(classes)} class(es); a classifier needs at least 2")
    _require(len(set(classes)) == len(classes), f"{label}: class names repeat: {classes}")
    for name in ("train", "val", "test"):
        split = getattr(splits, name)
        if split is None and name == "test":
            continue
        _require(split is not None and len(split) > 0, f"{label}: the {name} split is empty")
        for index in _spread(len(split)):
            _check_item(split[index], len(classes), f"{label}: {name}[{index}]")
        try:
            pickle.dumps(split)
        except Exception as exc:  # noqa: BLE001 - any pickling failure breaks data-loader workers
            raise AssertionError(f"{label}: the {name} split does not pickle ({exc}); data-loader "
                                 "workers receive it, so keep it to plain data and paths") from None
    try:
        json.dumps(splits.info)
    except TypeError as exc:
        raise AssertionError(f"{label}: DataSplits.info must be JSON (it goes into summary.json): {exc}") from None

    other = _instantiate(component_cls, options, DatasetProvider).load(ctx)
    _require(other.classes == classes and len(other.train) == len(splits.train)
             and len(other.val) == len(splits.val),
             f"{label}: a second load gave other classes or split sizes; every process of a torchrun "
             "run loads the data and they must agree item for item")
    for name in ("train", "val"):
        first, second = getattr(splits, name), getattr(other, name)
        for index in _spread(len(first)):
            _require(second[index][1] == first[index][1],
                     f"{label}: {name}[{index}] has another label on a second load; the order of "
                     "items must not depend on the process or on chance")
    return splits


def _spread(size: int) -> list[int]:
    return sorted({0, size // 3, size // 2, size - 1})


def _check_item(item: object, num_classes: int, where: str) -> None:
    from PIL import Image

    _require(isinstance(item, (tuple, list)) and len(item) == 2,
             f"{where}: items must be (PIL image, int label) pairs, got {type(item).__name__}")
    image, label = item  # type: ignore[misc]
    _require(isinstance(image, Image.Image),
             f"{where}: the image is a {type(image).__name__}; return a PIL image and leave "
             "resizing, tensors and normalisation to the engine")
    _require(image.mode == "RGB", f"{where}: image mode {image.mode!r}; return image.convert('RGB')")
    _require(image.width > 0 and image.height > 0, f"{where}: the image has no pixels")
    _require(isinstance(label, numbers.Integral) and not isinstance(label, bool),
             f"{where}: the label is a {type(label).__name__}; it must be the int index of its class")
    _require(0 <= label < num_classes, f"{where}: label {label} is outside 0..{num_classes - 1}")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def check_model_builder(component_cls: type[ModelBuilder], options: Options | Mapping[str, Any] | None = None,
                        *, class_counts: Sequence[int] = (2, 5)) -> "torch.nn.Module":
    """Build for several class counts; check logits, preprocessing, one training step, and that
    the bare architecture (``load_pretrained=False``) takes the trained weights back."""
    import torch

    label = _label(component_cls)
    first = None
    for num_classes in class_counts:
        ctx = ModelContext(num_classes=num_classes, class_names=[f"class_{i}" for i in range(num_classes)])
        builder = _instantiate(component_cls, options, ModelBuilder)
        model = builder.build(ctx)
        _require(isinstance(model, torch.nn.Module), f"{label}.build must return a torch.nn.Module, "
                 f"not {type(model).__name__}")
        _require(model.training, f"{label}.build must return the module in training mode")
        pre = builder.preprocessing()
        _check_preprocessing(pre, label)
        images = _model_inputs(pre)
        with torch.no_grad():
            logits = model.eval()(images)
        model.train()
        _require(isinstance(logits, torch.Tensor) and tuple(logits.shape) == (2, num_classes),
                 f"{label}: the model maps {tuple(images.shape)} images to "
                 f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}; "
                 f"expected a (2, {num_classes}) tensor of logits")
        _require(torch.isfinite(logits).all(), f"{label}: the logits are not finite")
        if first is None:
            first = (builder, model, images, ctx)
    _require(first is not None, "class_counts is empty")
    builder, model, images, ctx = first
    _train_one_step(builder, model, images, ctx.num_classes, label)
    bare = _instantiate(component_cls, options, ModelBuilder).build(replace(ctx, load_pretrained=False))
    try:
        bare.load_state_dict(model.state_dict())
    except RuntimeError as exc:
        raise AssertionError(f"{label}: the model built with load_pretrained=False does not take the "
                             f"weights of one built normally (evaluate, predict and export rebuild it "
                             f"that way, then load the checkpoint): {exc}") from None
    try:
        copy.deepcopy(model)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{label}: the model cannot be deep-copied (exporters get a copy): {exc}") from None
    return model


def _check_preprocessing(pre: Any, label: str) -> None:
    from torchvision.transforms import InterpolationMode

    _require(isinstance(pre, Preprocessing),
             f"{label}.preprocessing must return vitcore.components.Preprocessing, not {type(pre).__name__}")
    _require(isinstance(pre.image_size, int) and pre.image_size > 0,
             f"{label}: Preprocessing.image_size must be a positive int, got {pre.image_size!r}")
    _require(len(pre.mean) == 3 and all(0 <= m <= 1 for m in pre.mean),
             f"{label}: Preprocessing.mean must be 3 values in [0, 1] (of images scaled to 0-1), got {pre.mean}")
    _require(len(pre.std) == 3 and all(s > 0 for s in pre.std),
             f"{label}: Preprocessing.std must be 3 positive values, got {pre.std}")
    _require(0 < pre.crop_pct <= 1, f"{label}: Preprocessing.crop_pct must be in (0, 1], got {pre.crop_pct}")
    try:
        InterpolationMode(pre.interpolation)
    except ValueError:
        names = ", ".join(m.value for m in InterpolationMode)
        raise AssertionError(f"{label}: Preprocessing.interpolation {pre.interpolation!r} is not one of "
                             f"{names}") from None


def _model_inputs(pre: Preprocessing) -> "torch.Tensor":
    """Two pictures of another size and shape, through the engine's evaluation pipeline."""
    import torch
    from PIL import Image

    from vitcore.engine.data import DeviceNormalize
    from vitcore.engine.transforms import eval_transform

    transform = eval_transform(pre)
    pictures = colour_images(2, pre.image_size + 8, pre.image_size + 16)
    batch = torch.stack([transform(Image.fromarray(p.permute(1, 2, 0).numpy())) for p in pictures])
    return DeviceNormalize(pre, torch.device("cpu"))(batch)


def _train_one_step(builder: ModelBuilder, model: "torch.nn.Module", images: "torch.Tensor",
                    num_classes: int, label: str) -> None:
    import torch

    from vitcore.engine.optim import param_groups

    names = {n for n, _ in model.named_parameters()}
    exempt = builder.no_weight_decay(model)
    _require(isinstance(exempt, set) and exempt <= names,
             f"{label}.no_weight_decay must return a set of parameter names; unknown: "
             f"{sorted(set(exempt) - names) if isinstance(exempt, (set, list, tuple)) else exempt!r}")
    groups = builder.param_groups(model, 0.05, 1e-3) or param_groups(model, 0.05, exempt)
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    _require(len(grouped) == len(set(grouped)) and set(grouped) <= {id(p) for p in model.parameters()},
             f"{label}.param_groups lists a parameter twice or one of another model")
    _require(trainable, f"{label}: the model has no trainable parameters")
    optimizer = torch.optim.AdamW(groups, lr=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    targets = torch.arange(len(images)) % num_classes
    loss = torch.nn.functional.cross_entropy(model(images), targets)
    loss.backward()
    _require(torch.isfinite(loss), f"{label}: the training loss is {loss.item()}")
    _require(any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()),
             f"{label}: no gradient reaches the parameters (detached output, or everything frozen?)")
    optimizer.step()
    _require(any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters()),
             f"{label}: one optimizer step changed no weight")


# --------------------------------------------------------------------------------------------
# Augmentations
# --------------------------------------------------------------------------------------------


def check_augmentation(component_cls: type[Augmentation], options: Options | Mapping[str, Any] | None = None,
                       *, num_classes: int = 3, image_size: int = 32) -> None:
    """Per-sample: a uint8 ``(3, H, W)`` tensor in, a uint8 tensor out, picklable, and the engine's
    training pipeline still yields ``(3, image_size, image_size)``. Per-batch: a normalised float
    batch and class indices in, the batch and soft targets whose rows sum to 1 out. On the device
    (``device_transform``, if not None): uint8 and float batches keep their dtype, batch size and
    one image size, and ``train.augment: device``'s pipeline yields ``(B, 3, image_size, image_size)``."""
    import torch

    label = _label(component_cls)
    augmentation = _instantiate(component_cls, options, Augmentation)
    pre = Preprocessing(image_size)
    ctx = AugmentationContext(preprocessing=pre, num_classes=num_classes)
    sample, batch = augmentation.sample_transform(ctx), augmentation.batch_transform(ctx)
    _require(sample is not None or batch is not None,
             f"{label}: sample_transform and batch_transform both return None; implement one")
    if sample is not None:
        _check_sample_transform(augmentation, sample, ctx, label)
    on_device = augmentation.device_transform(ctx)
    if on_device is not None:
        _check_device_transform(on_device, ctx, label)
    if batch is not None:
        _require(callable(batch), f"{label}.batch_transform must return a callable, not {type(batch).__name__}")
        from vitcore.engine.data import DeviceNormalize

        images = DeviceNormalize(pre, torch.device("cpu"))(colour_images(4, image_size))
        targets = torch.arange(4) % num_classes
        out = batch(images, targets)
        _require(isinstance(out, tuple) and len(out) == 2,
                 f"{label}: the batch transform must return (images, soft_targets), got {type(out).__name__}")
        mixed, soft = out
        _require(isinstance(mixed, torch.Tensor) and mixed.shape == images.shape and mixed.is_floating_point(),
                 f"{label}: the batch transform must return float images of shape {tuple(images.shape)}")
        _require(isinstance(soft, torch.Tensor) and tuple(soft.shape) == (4, num_classes)
                 and soft.is_floating_point(),
                 f"{label}: soft targets must be a float (4, {num_classes}) tensor, got "
                 f"{tuple(soft.shape) if isinstance(soft, torch.Tensor) else type(soft).__name__}")
        _require(bool((soft >= 0).all()) and torch.allclose(soft.sum(dim=1), torch.ones(4), atol=1e-4),
                 f"{label}: each row of the soft targets must be probabilities summing to 1, got "
                 f"{soft.sum(dim=1).tolist()}")


def _check_sample_transform(augmentation: Augmentation, sample: Any, ctx: AugmentationContext,
                            label: str) -> None:
    import torch
    from PIL import Image

    from vitcore.engine.transforms import train_transform

    _require(callable(sample), f"{label}.sample_transform must return a callable, not {type(sample).__name__}")
    size = ctx.preprocessing.image_size
    pictures = colour_images(6, size + 8, size + 16)
    for picture in pictures:
        out = sample(picture.clone())
        _require(isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.ndim == 3
                 and out.shape[0] == 3,
                 f"{label}: the sample transform turned a uint8 (3, H, W) tensor into "
                 f"{_describe(out)}; it must return a uint8 (3, H, W) tensor")
    try:
        pickle.dumps(sample)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{label}: the sample transform does not pickle ({exc}); data-loader workers "
                             "receive it, so return a class instance or a torchvision transform, "
                             "not a lambda or a closure") from None
    pipeline = train_transform([augmentation], ctx)
    out = pipeline(Image.fromarray(pictures[0].permute(1, 2, 0).numpy()))
    _require(isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and tuple(out.shape) == (3, size, size),
             f"{label}: the training pipeline with it gives {_describe(out)}, not uint8 (3, {size}, {size})")


def _check_device_transform(on_device: Any, ctx: AugmentationContext, label: str) -> None:
    import torch

    from vitcore.engine.data import DeviceNormalize
    from vitcore.engine.device_augment import DeviceAugment

    _require(callable(on_device), f"{label}.device_transform must return a callable, not {type(on_device).__name__}")
    pre = ctx.preprocessing
    batch = colour_images(6, pre.image_size + 8, pre.image_size + 16)
    for images in (batch, batch.float()):
        out = on_device(images.clone())
        _require(isinstance(out, torch.Tensor) and out.dtype == images.dtype and out.ndim == 4
                 and tuple(out.shape[:2]) == (6, 3) and out.device == images.device,
                 f"{label}: the device transform turned a {_describe(images)} batch into {_describe(out)}; it "
                 f"must return a (6, 3, H, W) batch of the same dtype on the same device")
    pipeline = DeviceAugment([on_device], pre, DeviceNormalize(pre, torch.device("cpu")), torch.device("cpu"))
    out = pipeline(batch)
    size = pre.image_size
    _require(out.is_floating_point() and tuple(out.shape) == (6, 3, size, size),
             f"{label}: the device pipeline (train.augment: device) with it gives {_describe(out)}, not "
             f"float (6, 3, {size}, {size})")


def _describe(value: object) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    return f"{type(value).__name__} {tuple(shape) if shape is not None else ''} {dtype or ''}".strip()


# --------------------------------------------------------------------------------------------
# Metric sinks
# --------------------------------------------------------------------------------------------


def check_metric_sink(component_cls: type[MetricSink], options: Options | Mapping[str, Any] | None,
                      tmp_path: Path) -> Path:
    """A run's life: open, train and epoch records (with keys no sink knows), a picture, the
    graph, close; then a resumed run (``resumed=True``, ``start_step`` at the first epoch) that
    logs the second epoch. Records must come back unchanged. First, ``close()`` without
    ``open()``: the engine closes every sink it built when a run fails, also one whose
    ``open()`` never ran or raised. Returns the run directory."""
    import torch

    from vitcore.runs import create_version_dir

    label = _label(component_cls)
    run_dir = create_version_dir(tmp_path / "runs", "sink-contract")
    spec = _resolved_spec(TINY_VIT)
    records = metric_records(CLASSES)
    first_epoch = next(i for i, r in enumerate(records) if r["event"] == "epoch")
    picture = run_dir / "viz" / "picture.png"
    _save_png(colour_images(1, 32)[0], picture)

    unopened = _instantiate(component_cls, options, MetricSink)
    try:
        unopened.close()
    except Exception as exc:  # noqa: BLE001 - the rule broken is the message
        raise AssertionError(f"{label}.close() raised {type(exc).__name__}: {exc} without open() before it; the "
                             "engine closes every sink of a run that fails, also before or during open(): "
                             "close only what open() made (getattr(self, 'handle', None))") from exc

    sink = _instantiate(component_cls, options, MetricSink)
    sink.open(SinkContext(run_dir=run_dir, spec=spec))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 8, stride=8), torch.nn.Flatten(), torch.nn.Linear(64, 3))
    sink.log_graph(model, torch.zeros(2, 3, 32, 32))
    _log_all(sink, records[: first_epoch + 1], label)
    sink.log_image("viz/picture", picture, records[first_epoch]["step"])
    sink.close()

    resumed = _instantiate(component_cls, options, MetricSink)
    resumed.open(SinkContext(run_dir=run_dir, spec=spec, resumed=True, start_step=records[first_epoch]["step"]))
    _log_all(resumed, records[first_epoch + 1 :], label)
    resumed.close()
    return run_dir


def _log_all(sink: MetricSink, records: Sequence[dict[str, Any]], label: str) -> None:
    for record in records:
        before = copy.deepcopy(record)
        sink.log(record)
        _require(record == before, f"{label}.log changed the record it got (every sink gets the same "
                 f"dict); copy it first. Before: {before}, after: {record}")


def _save_png(image: "torch.Tensor", path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
    return path


def _resolved_spec(model: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved spec dict (defaults filled in), what sinks and exporters get as ``ctx.spec``."""
    from vitcore.spec import load_dict

    return load_dict({"name": "contract", "data": {"type": "shapes"}, "model": dict(model)}).to_dict()


# --------------------------------------------------------------------------------------------
# Exporters and visualizers: both get a real (tiny) model
# --------------------------------------------------------------------------------------------


def _tiny_model(model: Mapping[str, Any] | None) -> tuple["torch.nn.Module", Preprocessing, dict[str, Any]]:
    """Build the spec model entry ``model`` (default: ``TINY_VIT``) for the check classes."""
    import torch

    from vitcore.spec import resolve_component

    entry = dict(model or TINY_VIT)
    builder = resolve_component(entry, "models", "model").instantiate()
    torch.manual_seed(0)
    net = builder.build(ModelContext(num_classes=len(CLASSES), class_names=list(CLASSES)))
    return net.to("cpu", torch.float32).eval(), builder.preprocessing(), entry


def check_exporter(component_cls: type[Exporter], options: Options | Mapping[str, Any] | None, tmp_path: Path,
                   *, model: Mapping[str, Any] | None = None) -> list[Path]:
    """Export a tiny model twice (``vitcore export`` repeats into the same folder); every file it
    returns exists, is non-empty, lies under ``exports/`` and loads where its suffix is known
    (.safetensors, .pt/.pth/.bin with ``weights_only=True``, .json, .npz). ``model`` is the spec
    entry of the model to export (default: a tiny torchvision ViT). Returns the files."""
    import torch

    from vitcore.engine.data import DeviceNormalize
    from vitcore.runs import create_version_dir

    label = _label(component_cls)
    net, pre, entry = _tiny_model(model)
    run_dir = create_version_dir(tmp_path / "runs", "export-contract")
    examples = DeviceNormalize(pre, torch.device("cpu"))(colour_images(4, pre.image_size))
    ctx = ExportContext(run_dir=run_dir, model=net, classes=list(CLASSES), preprocessing=pre,
                        spec=_resolved_spec(entry), example_inputs=examples)
    paths: list[Path] = []
    for attempt in ("first", "second"):
        paths = _instantiate(component_cls, options, Exporter).export(ctx)
        _require(isinstance(paths, list) and paths and all(isinstance(p, Path) for p in paths),
                 f"{label}.export must return the list of Paths it wrote ({attempt} export gave {paths!r})")
        for path in paths:
            _require(path.is_file() and path.stat().st_size > 0, f"{label}: {path} is missing or empty")
            _require(path.resolve().is_relative_to(ctx.out_dir.resolve()),
                     f"{label}: {path} lies outside {ctx.out_dir}; write under ctx.out_dir")
            _load_export(path, label)
    return paths


def _load_export(path: Path, label: str) -> None:
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            load_file(str(path))
        elif suffix in {".pt", ".pth", ".bin"}:
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as archive:
                sum(archive[key].size for key in archive.files)
    except Exception as exc:  # noqa: BLE001 - any failure to read back is the finding
        raise AssertionError(f"{label}: {path} does not load as {suffix} ({type(exc).__name__}: {exc})") from None


def check_visualizer(component_cls: type[Visualizer], options: Options | Mapping[str, Any] | None,
                     tmp_path: Path, *, model: Mapping[str, Any] | None = None) -> list[Path]:
    """Render at the end of a two-epoch run (model, samples, records); a visualizer that does not
    need the model must also draw from records alone, as ``vitcore plot`` does. Every picture is
    a readable, non-blank image inside the run directory. Returns the pictures."""
    from vitcore.runs import create_version_dir

    label = _label(component_cls)
    net, pre, _entry = _tiny_model(model)
    run_dir = create_version_dir(tmp_path / "runs", "visualizer-contract")
    pictures = colour_images(4, pre.image_size)
    ctx = VisualizerContext(run_dir=run_dir, records=metric_records(CLASSES), classes=list(CLASSES), model=net,
                            preprocessing=pre, samples=[(p, i % len(CLASSES)) for i, p in enumerate(pictures)],
                            epoch=2, final=True)
    paths = _render(component_cls, options, ctx, label)
    if not component_cls.needs_model:
        _render(component_cls, options, replace(ctx, model=None, preprocessing=None, samples=()), label)
    return paths


def _render(component_cls: type[Visualizer], options: Any, ctx: VisualizerContext, label: str) -> list[Path]:
    import numpy as np
    from PIL import Image

    how = "with the model" if ctx.model is not None else "from metric records alone"
    paths = _instantiate(component_cls, options, Visualizer).render(ctx)
    _require(isinstance(paths, list) and paths and all(isinstance(p, Path) for p in paths),
             f"{label}.render ({how}) must return the list of Paths it drew, got {paths!r}")
    for path in paths:
        _require(path.is_file(), f"{label}: {path} does not exist")
        _require(path.resolve().is_relative_to(ctx.run_dir.resolve()),
                 f"{label}: {path} lies outside the run directory; write under ctx.out_dir")
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"{label}: {path} is not a readable image (PNG): {exc}") from None
        _require(pixels.size and pixels.min() != pixels.max(), f"{label}: {path} is blank (one colour)")
    return paths
