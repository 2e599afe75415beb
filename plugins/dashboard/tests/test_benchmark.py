"""benchmarks/dashboard.py runs (small) and prints the figures benchmarks/RESULTS.md records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "dashboard.py"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="benchmarks/ is not beside this plugin (installed alone)")
def test_the_dashboard_benchmark_measures_both_promises():
    done = subprocess.run([sys.executable, str(SCRIPT), "--runs", "40", "--records", "3000", "--polls", "3",
                           "--repeats", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout[done.stdout.index("{"):])
    assert out["machine"]["nproc"] >= 1 and out["machine"]["cpu"]
    assert out["runs"]["versions"] == 40 and 0 < out["runs"]["warm_median_s"] < 5
    metrics = out["metrics"]
    assert metrics["first_full_records"] == 3003 and metrics["records_per_poll"] == 10
    # Each poll read what was appended (to index it) and those records again (to answer): no more.
    assert metrics["polls_reading_only_new_bytes"] == metrics["polls"] == 3
    assert metrics["bytes_read_per_poll"] == 2 * metrics["bytes_appended_per_poll"]
