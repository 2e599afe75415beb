"""Acceptance, small: after a few seconds of training on ``shapes``, attention rollout puts more
of its mass inside the shapes' bounding boxes than the same architecture does untrained; and the
visualizers run during training reach TensorBoard. (The full-size measurement is
benchmarks/rollout_in_box.py, recorded in the README.)"""

from __future__ import annotations

import statistics

from vitcore_viz_attention.boxes import (
    fresh_model,
    rollout_box_ratios,
    validation_boxes,
)

from vitcore.api import load_run_model, read_json, read_records


def test_rollout_favours_the_shape_after_training_and_not_before(shapes_run):
    spec = read_json(shapes_run / "spec.json")
    loaded = load_run_model(shapes_run)
    items = validation_boxes(spec["data"], loaded.preprocessing)
    assert len(items) == 40
    trained = statistics.mean(rollout_box_ratios(loaded.model, loaded.preprocessing, items))
    untrained = statistics.mean(rollout_box_ratios(fresh_model(spec["model"], loaded.classes), loaded.preprocessing,
                                                   items))
    # Measured: trained 2.0, untrained 1.02 (seeds 0-6 of this set-up: trained 1.15-2.5).
    assert untrained < 1.1, f"untrained rollout already prefers the box: {untrained:.3f}"
    assert trained > 1.1 * untrained, f"trained {trained:.3f} vs untrained {untrained:.3f}"


def test_visualizers_draw_during_training_and_tensorboard_gets_each_drawing(shapes_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = read_json(shapes_run / "summary.json")
    assert str(shapes_run / "viz" / "attention_rollout.png") in summary["plots"]
    events = EventAccumulator(str(shapes_run / "tb"), size_guidance={"images": 0}).Reload()
    steps = [event.step for event in events.Images("viz/attention_rollout")]
    epoch_steps = {r["epoch"]: r["step"] for r in read_records(shapes_run) if r.get("event") == "epoch"}
    # every_n_epochs=10: after epochs 10 and 20, then at the end with the best weights.
    assert steps == [epoch_steps[10], epoch_steps[20], epoch_steps[20]]

