"""Acceptance: the dashboard follows a real training run through its JSON API while it trains."""

from __future__ import annotations

import json
import time


def wait_for(predicate, timeout: float, message: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message)


def test_the_api_follows_a_run_from_running_to_completed(tmp_path, make_spec, start_training, start_dashboard, pace):
    root = tmp_path / "runs"
    root.mkdir()
    dashboard = start_dashboard(root)
    assert dashboard.json("/api/runs")["runs"] == []
    training = start_training(make_spec(root, "live", epochs=8, train_per_class=24), tmp_path)
    pacer = pace(training, root / "live" / "v1")
    try:
        # Held still after its first records, however fast this machine trains: the reads below
        # happen while the run is running.
        held = pacer.hold_after(0)
        (row,) = dashboard.json("/api/runs")["runs"]
        assert (row["name"], row["version"], row["status"], row["epochs_total"]) == ("live", "v1", "running", 8)
        first = dashboard.json("/api/runs/live/v1/metrics?after=-1")
        assert len(first["records"]) == first["count"] == held
        pacer.hold_after(held)
        second = dashboard.json(f"/api/runs/live/v1/metrics?after={first['last_step']}")
        assert dashboard.json("/api/runs")["runs"][0]["status"] == "running"
        # The second read holds only the records after the first one's last step, and they grew.
        assert second["records"] and min(r["step"] for r in second["records"]) > first["last_step"]
        assert second["last_step"] > first["last_step"] and second["count"] > first["count"]
        assert second["generation"] == first["generation"]
        detail = dashboard.json("/api/runs/live/v1")
        assert detail["status"] == "running" and detail["spec"]["model"]["depth"] == 2
        pacer.go()
        output, _ = training.communicate(timeout=300)
        assert training.returncode == 0, output[-3000:]
    finally:
        pacer.go()
        if training.poll() is None:
            training.kill()
    final = wait_for(lambda: (r := dashboard.json("/api/runs")["runs"][0])["status"] == "completed" and r, 30,
                     "the run did not end as completed")
    assert final["epochs_completed"] == 8 and final["best_value"] is not None
    everything = dashboard.json("/api/runs/live/v1/metrics")
    lines = (root / "live" / "v1" / "metrics.jsonl").read_text().splitlines()
    assert everything["records"] == [json.loads(line) for line in lines]
    assert sum(r["event"] == "epoch" for r in everything["records"]) == 8
    assert {p["name"] for p in dashboard.json("/api/runs/live/v1")["pictures"]} >= {"curves.png",
                                                                                     "confusion_matrix.png"}
