"""``vitcore visualize``: this plugin's visualizers on a finished run's best model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from vitcore.api import VitcoreError
from vitcore_viz_attention.visualizers import NAMES


def visualizer_entries(spec: dict[str, Any], names: Sequence[str], overrides: Sequence[str],
                       num_samples: int) -> list[Any]:
    """Resolved visualizers to run: each takes the run spec's options when the spec lists it,
    shows ``num_samples`` images, then takes the ``NAME.FIELD=VALUE`` overrides meant for it."""
    from vitcore.api import apply_overrides, registry, resolve_component

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
    from vitcore.api import eval_transform, load_rgb

    transform = eval_transform(preprocessing)
    return [(transform(load_rgb(path)), -1) for path in paths]


def visualize_run(run_dir: Path, images: Sequence[Path] = (), out: Path | None = None,
                  names: Sequence[str] = (), count: int = 4, overrides: Sequence[str] = ()) -> list[Path]:
    """Draw the pictures of ``run_dir``'s best model into ``out`` (default ``run_dir/viz``).

    The images are ``images`` when given, else ``count`` of the run's validation images; the
    visualizers show them all unless a ``NAME.num_samples=`` override says otherwise.
    """
    from vitcore.api import read_json, read_records, timed_step
    from vitcore_viz_attention.base import VizContext

    spec = read_json(run_dir / "spec.json")
    with timed_step(f"load the best model of {run_dir}"):  # the first step imports torch: seconds
        from vitcore.api import load_run_model, validation_samples

        loaded = load_run_model(run_dir)
    pre = loaded.preprocessing
    given = f"read {len(images)} image{'s' if len(images) != 1 else ''}"
    with timed_step(given if images else "read the run's validation images") as note:
        samples = image_samples(images, pre) if images else validation_samples(spec, pre, count)
        note.detail = f"{len(samples)} images"
    entries = visualizer_entries(spec, names, overrides, len(samples))
    ctx = VizContext(run_dir=run_dir, records=read_records(run_dir), classes=loaded.classes, model=loaded.model,
                     preprocessing=pre, samples=samples, final=True, viz_dir=out)
    paths: list[Path] = []
    for entry in entries:
        with timed_step(f"draw {entry.type}") as note:
            drawn = entry.instantiate().render(ctx)
            note.detail = f"{len(drawn)} picture{'s' if len(drawn) != 1 else ''}"
        paths.extend(drawn)
    return paths
