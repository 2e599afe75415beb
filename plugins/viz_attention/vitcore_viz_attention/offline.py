"""``vitcore visualize``: this plugin's visualizers on a finished run's best model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from vitcore.errors import VitcoreError
from vitcore_viz_attention.visualizers import NAMES


def visualizer_entries(spec: dict[str, Any], names: Sequence[str], overrides: Sequence[str],
                       num_samples: int) -> list[Any]:
    """Resolved visualizers to run: each takes the run spec's options when the spec lists it,
    shows ``num_samples`` images, then takes the ``NAME.FIELD=VALUE`` overrides meant for it."""
    from vitcore.plugins import registry
    from vitcore.spec import apply_overrides, resolve_component

    unknown = sorted({o.split(".", 1)[0] for o in overrides} - set(NAMES))
    if unknown or any("." not in o.split("=", 1)[0] for o in overrides):
        raise VitcoreError(f"--option takes NAME.FIELD=VALUE with NAME one of {', '.join(NAMES)}; "
                           f"got {', '.join(overrides)}")
    listed = {entry.get("type"): entry for entry in spec.get("visualizers", [])}
    entries = []
    for name in names or NAMES:
        mine = [o.split(".", 1)[1] for o in overrides if o.split(".", 1)[0] == name]
        options = dict(listed.get(name, {"type": name}))
        if "num_samples" in registry("visualizers").get(name).component.Options.model_fields:
            options["num_samples"] = max(1, num_samples)
        options = apply_overrides(options, mine)
        entries.append(resolve_component(options, "visualizers", f"--option {name}"))
    return entries


def image_samples(paths: Sequence[Path], preprocessing: Any) -> list[tuple[Any, int]]:
    """Image files prepared as evaluation prepares them; label -1: not known."""
    from vitcore.builtin.images import load_rgb
    from vitcore.builtin.transforms import eval_transform

    transform = eval_transform(preprocessing)
    return [(transform(load_rgb(path)), -1) for path in paths]


def visualize_run(run_dir: Path, images: Sequence[Path] = (), out: Path | None = None,
                  names: Sequence[str] = (), count: int = 4, overrides: Sequence[str] = ()) -> list[Path]:
    """Draw the pictures of ``run_dir``'s best model into ``out`` (default ``run_dir/viz``).

    The images are ``images`` when given, else ``count`` of the run's validation images; the
    visualizers show them all unless a ``NAME.num_samples=`` override says otherwise.
    """
    from vitcore.exporting import validation_samples
    from vitcore.inference import load_run_model
    from vitcore.metrics_file import read_records
    from vitcore.runs import read_json
    from vitcore_viz_attention.base import VizContext

    spec = read_json(run_dir / "spec.json")
    loaded = load_run_model(run_dir)
    pre = loaded.preprocessing
    samples = image_samples(images, pre) if images else validation_samples(spec, pre, count)
    entries = visualizer_entries(spec, names, overrides, len(samples))
    ctx = VizContext(run_dir=run_dir, records=read_records(run_dir), classes=loaded.classes, model=loaded.model,
                     preprocessing=pre, samples=samples, final=True, viz_dir=out)
    paths: list[Path] = []
    for entry in entries:
        paths.extend(entry.instantiate().render(ctx))
    return paths
