"""The end of a run (rank 0): the best weights back in the model, final pictures, exports.

Pictures and exports belong to the run: their failure fails it. Each step's time goes into
summary.json (``end_of_run_s``) so a slow exporter or visualizer is visible.
"""

from __future__ import annotations

import time

from vitcore.engine.checkpoint import load_checkpoint
from vitcore.engine.events import RunEvents
from vitcore.engine.progress import RunProgress
from vitcore.engine.setup import RunParts


def finish_run(parts: RunParts, progress: RunProgress, events: RunEvents) -> None:
    from vitcore.exporting import run_exporters

    best = progress.run_dir / "checkpoints" / "best.pt"
    if best.is_file():
        parts.raw_model.load_state_dict(load_checkpoint(best)["model"])
    start = time.perf_counter()
    plots = events.draw(progress.epoch, True, parts.raw_model, parts.classes, parts.preprocessing,
                        parts.samples, progress.step)
    progress.timings["pictures"] = time.perf_counter() - start
    progress.plots = [str(p) for p in plots]
    start = time.perf_counter()
    exports = run_exporters(parts.resolved.exporters, progress.run_dir, parts.raw_model, parts.classes,
                            parts.preprocessing, parts.resolved.to_dict(), parts.samples)
    progress.timings["exports"] = time.perf_counter() - start
    progress.exports = [str(p) for p in exports]
