"""The run page shows the test split's figures (summary.json's ``test``: the best model evaluated
once at the end of the run) and the evaluation's pictures; a run without a test split shows none.

A real run (``python -m vitcore run`` in a child) on an imagefolder with train/, val/ and test/
folders of real PNGs, read by a real dashboard process; the page itself in headless Chromium
when it is installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vitcore.testing import TINY_VIT, make_image_folder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def tested_root(tmp_path_factory, start_training) -> Path:
    base = tmp_path_factory.mktemp("tested")
    data = base / "data"
    make_image_folder(data / "train", per_class=6, seed=0)
    make_image_folder(data / "val", per_class=2, seed=1)
    make_image_folder(data / "test", per_class=3, seed=2)
    spec = {
        "name": "tested", "output_dir": str(base / "runs"),
        "data": {"type": "imagefolder", "root": str(data)},
        "model": dict(TINY_VIT), "augmentations": [],
        "train": {"epochs": 1, "batch_size": 4, "lr": 0.003, "warmup_epochs": 0, "num_workers": 0},
        "sinks": [{"type": "jsonl"}], "visualizers": [], "exporters": [],
    }
    process = start_training(spec, base)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    return base / "runs"


def test_the_run_detail_holds_the_test_figures_and_pictures(tested_root, start_dashboard, finished_root):
    summary = json.loads((tested_root / "tested" / "v1" / "summary.json").read_text())
    dashboard = start_dashboard(tested_root)
    detail = dashboard.json("/api/runs/tested/v1")
    test = detail["test"]
    assert test["images"] == 9 and test["classes"] == ["blue", "green", "red"]
    assert test["acc1"] == summary["test"]["acc1"] and test["ece"] == summary["test"]["calibration"]["ece"]
    assert test["macro"] == {k: summary["test"]["macro"][k] for k in ("precision", "recall", "f1")}
    assert test["per_class"] == summary["test"]["per_class"] and test["confusion"] == summary["test"]["confusion"]
    assert detail["test_error"] is None
    shown = {p["name"]: p for p in detail["pictures"] if p["folder"] == "evaluations"}
    assert {"test_reliability.png", "test_confusion.png"} <= set(shown)
    status, headers, body = dashboard.request(shown["test_reliability.png"]["url"])
    assert status == 200 and headers["content-type"] == "image/png" and body[:4] == b"\x89PNG"

    other = start_dashboard(finished_root)  # shapes: no test split
    assert other.json("/api/runs/shapes-done/v1")["test"] is None


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed; the page is not checked in a browser")
def test_the_run_page_shows_the_test_figures(tested_root, start_dashboard):
    from playwright.sync_api import sync_playwright

    summary = json.loads((tested_root / "tested" / "v1" / "summary.json").read_text())
    dashboard = start_dashboard(tested_root)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(dashboard.url + "#/run/tested/v1")
            page.wait_for_selector("#test-figures", timeout=60_000)
            figures = page.text_content("#test-figures")
            assert "top-1" in figures and f"{summary['test']['acc1']:.4f}" in figures and "macro f1" in figures
            rows = page.locator("#test-per-class tbody tr")
            assert rows.count() == 3 and rows.first.text_content().startswith("blue")
            assert page.locator("#test-confusion tbody tr").count() == 3
            assert page.locator("figcaption", has_text="evaluations/test_reliability.png").count() == 1
            assert not errors, errors
        finally:
            browser.close()
