"""During a run: FC-layer histograms reach TensorBoard per drawing epoch; the report is written at the end."""

from __future__ import annotations


def test_a_run_logs_weight_histograms_and_ends_with_a_report(shapes_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(shapes_run / "tb"), size_guidance={"histograms": 0}).Reload()
    histograms = events.Tags()["histograms"]
    assert {"fc/head", "fc/block0.fc1", "fc/block0.fc2"} <= set(histograms)
    steps = [e.step for e in events.Histograms("fc/head")]
    assert len(steps) == 3 and steps == sorted(steps), "epochs 10 and 20, and the end of the run"
    report = (shapes_run / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 4
