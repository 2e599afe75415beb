"""``vitcore plot``: redraw a run's metric pictures from metrics.jsonl, without the model."""

from __future__ import annotations

from pathlib import Path

from vitcore.components import VisualizerContext
from vitcore.runs import read_json


def plot_run(run_dir: Path) -> list[Path]:
    """Run the spec's metrics-only visualizers (curves, confusion matrix, ...) on recorded metrics."""
    from vitcore import spec as spec_module
    from vitcore.metrics_file import read_records

    resolved = spec_module.resolve(read_json(run_dir / "spec.json"), source=str(run_dir / "spec.json"))
    summary_path = run_dir / "summary.json"
    classes = read_json(summary_path).get("classes", []) if summary_path.is_file() else []
    ctx = VisualizerContext(run_dir=run_dir, records=read_records(run_dir), classes=classes, final=True)
    paths: list[Path] = []
    for entry in resolved.visualizers:
        visualizer = entry.instantiate()
        if not visualizer.needs_model:
            paths.extend(visualizer.render(ctx))
    return paths
