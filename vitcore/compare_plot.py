"""``vitcore runs compare``'s picture: the runs' curves overlaid, one colour per run.

Training loss per step, validation loss and top-1 per epoch, from each run's metrics.jsonl (the
source of truth for every plot). matplotlib is imported only when drawing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from vitcore.metrics_file import read_records

#: (panel title, record event, x key, y key).
PANELS = (
    ("training loss", "train", "step", "loss"),
    ("validation loss", "epoch", "epoch", "val_loss"),
    ("validation top-1", "epoch", "epoch", "val_acc1"),
)

#: One per run, with its colour, so identical curves do not hide each other.
LINE_STYLES = ("-", "--", "-.", ":")


def default_plot_path(run_dirs: Sequence[Path]) -> Path:
    """``<runs root>/compare/<name>-v1_vs_<name>-v2.png`` beside the runs (shortened when long)."""
    labels = [f"{d.parent.name}-{d.name}" for d in run_dirs]
    stem = "_vs_".join(labels)
    if len(stem) > 120:
        stem = f"{stem[:100]}_{hashlib.sha1(stem.encode()).hexdigest()[:10]}"
    return run_dirs[0].parent.parent / "compare" / f"{stem}.png"


def _series(records: Sequence[dict[str, Any]], event: str, x_key: str, y_key: str) -> tuple[list, list]:
    points = [(r[x_key], r[y_key]) for r in records
              if r.get("event") == event and isinstance(r.get(x_key), (int, float))
              and isinstance(r.get(y_key), (int, float))]
    return [x for x, _ in points], [y for _, y in points]


def draw_comparison(run_dirs: Sequence[Path], path: Path | None = None) -> Path | None:
    """Draw the runs' curves overlaid into ``path`` (default ``default_plot_path``); None when no
    run has a metric record to draw."""
    from matplotlib.ticker import MaxNLocator

    from vitcore.figures import pyplot, save_figure

    histories = [(f"{d.parent.name}/{d.name}", read_records(d)) for d in run_dirs]
    if not any(records for _, records in histories):
        return None
    plt = pyplot()
    figure, axes = plt.subplots(1, len(PANELS), figsize=(5.0 * len(PANELS), 3.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for column, (title, event, x_key, y_key) in enumerate(PANELS):
        ax = axes[0, column]
        for index, (label, records) in enumerate(histories):
            xs, ys = _series(records, event, x_key, y_key)
            if xs:  # a legend entry only for a run that has a line here
                # Dashes differ too: runs with equal values stay visible on top of each other.
                ax.plot(xs, ys, color=colours(index % 10), label=label, marker="o" if event == "epoch" else None,
                        markersize=3, linewidth=1.4, linestyle=LINE_STYLES[index % len(LINE_STYLES)])
        ax.set_title(title)
        ax.set_xlabel(x_key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and epochs are whole numbers
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    figure.suptitle(f"{len(run_dirs)} runs compared", fontsize=11, y=1.03)
    out = Path(path) if path is not None else default_plot_path(list(run_dirs))
    return save_figure(figure, out)
