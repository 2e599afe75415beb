"""The end of a run (rank 0): the best weights back in the model, final pictures, exports, and
the test split evaluated once with those weights.

Pictures and exports belong to the run: their failure fails it. The test evaluation does not:
it comes last, and a failure there is reported (a warning and summary.json's ``test_error``)
while the run keeps its checkpoints, pictures and exports. Each step's time goes into
summary.json (``end_of_run_s``) so a slow exporter, visualizer or evaluation is visible.
"""

from __future__ import annotations

import time
import warnings

from vitcore.engine.checkpoint import load_checkpoint
from vitcore.engine.events import RunEvents
from vitcore.engine.progress import RunProgress
from vitcore.engine.setup import RunParts


def finish_run(parts: RunParts, progress: RunProgress, events: RunEvents) -> None:
    from vitcore.exporting import run_exporters

    best = progress.run_dir / "checkpoints" / "best.pt"
    weights = "raw"
    if best.is_file():
        checkpoint = load_checkpoint(best)
        parts.raw_model.load_state_dict(checkpoint["model"])
        weights = str(checkpoint.get("weights", "raw"))
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
    evaluate_test(parts, progress, weights)


def evaluate_test(parts: RunParts, progress: RunProgress, weights: str = "raw") -> None:
    """Evaluate the model as it stands (the best weights) on the data set's test split, if it has
    one, into ``evaluations/test.json`` and summary.json's ``test``. Test images never choose the
    best epoch: this is the one look at them. A failure is a warning, never the run's failure."""
    if parts.splits.test is None or len(parts.splits.test) == 0:  # type: ignore[arg-type]
        return
    from vitcore.evaluation import evaluate_test_split

    start = time.perf_counter()
    try:
        result = evaluate_test_split(parts.raw_model, parts.splits, parts.preprocessing, parts.classes,
                                     parts.device, parts.precision, progress.run_dir,
                                     extra={"checkpoint": "best.pt", "weights": weights})
    except Exception as exc:  # noqa: BLE001 - the trained run and its exports are kept whatever happens here
        message = (f"the test split could not be evaluated ({type(exc).__name__}: {exc}); the run, its checkpoints "
                   f"and exports are kept: retry with `vitcore evaluate {progress.run_dir} --split test`")
        warnings.warn(message, stacklevel=2)
        progress.record_test(None, message)
    else:
        progress.record_test(result)
    progress.timings["test_evaluation"] = time.perf_counter() - start
