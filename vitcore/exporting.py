"""Running exporters on a model: at the end of a run, or afterwards with ``vitcore export``."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

from vitcore.components import ExportContext, Preprocessing
from vitcore.spec import ResolvedComponent


def example_inputs(samples: Sequence[tuple[torch.Tensor, int]], pre: Preprocessing, count: int = 4):
    """A normalised float batch of real images (exporters compare their output on it)."""
    from vitcore.engine.data import DeviceNormalize

    if not samples:
        return None
    return DeviceNormalize(pre, torch.device("cpu"))(torch.stack([s[0] for s in samples[:count]]))


def run_exporters(
    entries: Sequence[ResolvedComponent],
    run_dir: Path,
    model: torch.nn.Module,
    classes: list[str],
    pre: Preprocessing,
    spec: dict[str, Any],
    samples: Sequence[tuple[torch.Tensor, int]] = (),
) -> list[Path]:
    """Export a CPU float32 copy of ``model`` with each exporter; returns every file written.

    Whatever an exporter returns is hashed into ``exports/manifest.json`` as soon as it returns
    (``vitcore runs verify`` then knows every file, a plugin's too) and given the permissions of
    the run's other files; the model card is written afresh after the last one, so a later
    ``vitcore export`` refreshes it. Each exporter's time is printed on stderr.
    """
    from vitcore.export_records import readable_like_the_rest, record_exports
    from vitcore.steps import timed_step
    from vitcore.versions import write_model_card

    export_model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    ctx = ExportContext(run_dir=run_dir, model=export_model, classes=classes, preprocessing=pre,
                        spec=spec, example_inputs=example_inputs(samples, pre))
    paths: list[Path] = []
    for entry in entries:
        with timed_step(f"export {entry.type}") as note:
            files = [Path(p) for p in entry.instantiate().export(ctx)]
            readable_like_the_rest(files, ctx.out_dir)
            record_exports(ctx.out_dir, entry.type, entry.options.model_dump(mode="json"), files)
            note.detail = ", ".join(_shown(p, ctx.out_dir) for p in files) or "no files"
        paths.extend(files)
    if entries:
        write_model_card(run_dir, spec=spec, classes=list(classes), preprocessing=pre.to_dict())
    return paths


def _shown(path: Path, out_dir: Path) -> str:
    try:
        return str(path.relative_to(out_dir))
    except ValueError:
        return str(path)


def validation_samples(spec: dict[str, Any], pre: Preprocessing, count: int = 8):
    """A few of the run's validation images, re-read from its data set; () if it is gone."""
    from vitcore.data_loading import load_splits
    from vitcore.engine.data import first_samples
    from vitcore.engine.transforms import eval_transform
    from vitcore.errors import VitcoreError

    try:
        splits = load_splits(spec)
    except VitcoreError as exc:
        warnings.warn(f"the run's validation images are not available ({exc}); continuing without them",
                      stacklevel=2)
        return ()
    return first_samples(splits.val, eval_transform(pre), count)


def export_run(run_dir: Path, formats: Sequence[str], overrides: Sequence[str] = ()) -> list[Path]:
    """``vitcore export``: export a finished run's best model in the named formats.

    An exporter the run's spec lists starts from the options written there (the first entry of
    that type), so exporting again gives what the run gave; ``overrides`` (``--option``) change
    them. Each step's time is printed on stderr.
    """
    import json

    from vitcore.inference import load_run_model
    from vitcore.runs import read_json
    from vitcore.spec import apply_overrides, resolve_component
    from vitcore.steps import timed_step

    spec = read_json(run_dir / "spec.json")
    listed: dict[str, dict[str, Any]] = {}
    for item in spec.get("exporters") or []:
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            listed.setdefault(item["type"], item)
    entries = []
    for index, name in enumerate(formats):
        options = json.loads(json.dumps(listed.get(name, {"type": name})))
        options = apply_overrides(options, list(overrides))
        entries.append(resolve_component(options, "exporters", f"--format[{index}]"))
    with timed_step(f"load the best model of {run_dir}"):
        loaded = load_run_model(run_dir)
    with timed_step("read validation images for the export checks") as note:
        samples = validation_samples(spec, loaded.preprocessing)
        note.detail = f"{len(samples)} images"
    return run_exporters(entries, run_dir, loaded.model, loaded.classes, loaded.preprocessing, spec, samples)
