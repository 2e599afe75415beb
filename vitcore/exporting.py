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
    """Export a CPU float32 copy of ``model`` with each exporter; returns every file written."""
    export_model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    ctx = ExportContext(run_dir=run_dir, model=export_model, classes=classes, preprocessing=pre,
                        spec=spec, example_inputs=example_inputs(samples, pre))
    paths: list[Path] = []
    for entry in entries:
        paths.extend(entry.instantiate().export(ctx))
    return paths


def validation_samples(spec: dict[str, Any], pre: Preprocessing, count: int = 8):
    """A few of the run's validation images, re-read from its data set; () if it is gone."""
    from vitcore.builtin.transforms import eval_transform
    from vitcore.components import DataContext
    from vitcore.engine.data import first_samples
    from vitcore.engine.trainer import cache_dir
    from vitcore.errors import VitcoreError
    from vitcore.spec import resolve_component

    try:
        provider = resolve_component(spec["data"], "datasets", "data").instantiate()
        splits = provider.load(DataContext(cache_dir=cache_dir(), seed=spec.get("train", {}).get("seed", 0)))
    except VitcoreError as exc:
        warnings.warn(f"the run's validation images are not available ({exc}); continuing without them",
                      stacklevel=2)
        return ()
    return first_samples(splits.val, eval_transform(pre), count)


def export_run(run_dir: Path, formats: Sequence[str], overrides: Sequence[str] = ()) -> list[Path]:
    """``vitcore export``: export a finished run's best model in the named formats."""
    from vitcore.inference import load_run_model
    from vitcore.runs import read_json
    from vitcore.spec import apply_overrides, resolve_component

    loaded = load_run_model(run_dir)
    spec = read_json(run_dir / "spec.json")
    entries = []
    for index, name in enumerate(formats):
        options = apply_overrides({"type": name}, list(overrides))
        entries.append(resolve_component(options, "exporters", f"--format[{index}]"))
    samples = validation_samples(spec, loaded.preprocessing)
    return run_exporters(entries, run_dir, loaded.model, loaded.classes, loaded.preprocessing, spec, samples)
