"""Acceptance, in a real headless Chromium: the run page grows its charts while the run trains
(no reload), the model explorer expands a block, the attention explorer answers a click on a
patch with a picture. Screenshots are checked for content and kept in the test's folder.

``VITCORE_DOCS_SCREENSHOT=1`` also saves the finished run page as docs/dashboard.png (the
README's picture). Chromium comes from the system (``apt-get install chromium``; .ci/run installs
it), driven by Playwright's Python package, which downloads no browser of its own.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DOCS_PICTURE = Path(__file__).resolve().parents[3] / "docs" / "dashboard.png"

if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("Chromium is missing on CI: .ci/run installs it (apt-get install chromium)", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install "
                                                         "chromium); the dashboard is not checked in a browser")


def check_screenshot(path: Path, min_std: float = 20, min_coloured: float = 0.01) -> None:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    assert pixels.std() > min_std, f"{path.name} looks blank"
    coloured = ((pixels.max(axis=2) - pixels.min(axis=2)) > 60).mean()
    assert coloured > min_coloured, f"{path.name} has no charts or pictures ({coloured:.3%} coloured pixels)"


def points(page, selector: str) -> int:
    value = page.get_attribute(selector, "data-points")
    return int(value) if value else 0


def wait_until(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(message)


def test_the_dashboard_in_a_real_browser(tmp_path, make_spec, start_training, start_dashboard, pace):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "runs"
    (root / "torn" / "v1").mkdir(parents=True)
    (root / "torn" / "v1" / "summary.json").write_text('{"status": "runn')  # shown as such, breaks nothing
    dashboard = start_dashboard(root)
    shots = tmp_path / "shots"
    shots.mkdir()
    training = None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # The attention explorer's "not yet" (409 until the first checkpoint, which the page
            # waits out) is logged by Chromium as a failed resource; any other error counts.
            page.on("console", lambda message: errors.append(message.text)
                    if message.type == "error" and "status of 409" not in message.text else None)

            page.goto(dashboard.url)
            page.wait_for_selector("tr.run-row[data-key='torn/v1'] .problem")
            page.evaluate("window.__notReloaded = true")
            training = start_training(make_spec(root, "live", epochs=10, train_per_class=24), tmp_path)
            # Held still after its first records (however fast this machine trains), then let go
            # a little at a time: the page sees it running and its charts grow while it trains.
            pacer = pace(training, root / "live" / "v1")
            held = pacer.hold_after(0)
            # The new run appears in the open runs page.
            page.wait_for_selector("tr.run-row[data-key='live/v1'][data-status='running']", timeout=120_000)
            page.click("tr.run-row[data-key='live/v1'] a")
            page.wait_for_selector("#chart-loss[data-points]", timeout=60_000)
            first = points(page, "#chart-loss")
            assert first > 0
            held = pacer.hold_after(held + 3)
            wait_until(lambda: points(page, "#chart-loss") > first, 60,
                       "the loss chart did not gain points while the run trained")
            assert page.get_attribute("#run-status .badge", "class") == "badge running"
            assert page.evaluate("window.__notReloaded") is True, "the page was reloaded"
            page.screenshot(path=str(shots / "live.png"), full_page=True)
            check_screenshot(shots / "live.png", min_coloured=0.001)
            page.locator("#chart-loss").screenshot(path=str(shots / "live-loss.png"))
            check_screenshot(shots / "live-loss.png", min_std=10, min_coloured=0.004)  # the curve is drawn
            pacer.go()  # the explorers need the checkpoint of its first epoch

            page.click("#tab-model")
            block = page.wait_for_selector("li[data-block='0']", timeout=60_000)
            child = "li[data-module='encoder.layers.encoder_layer_0.self_attention']"
            assert page.query_selector(child) is None or not page.is_visible(child)
            page.click("li[data-block='0'] > .node .toggle")
            page.wait_for_selector(child, state="visible")
            assert block.get_attribute("data-open") == "true"
            assert "EncoderBlock" in block.inner_text() and "[1, 17, 32]" in block.inner_text()
            page.screenshot(path=str(shots / "model.png"), full_page=True)
            check_screenshot(shots / "model.png", min_coloured=0.001)

            page.click("li[data-block='1'] .links a.block-attention")  # the block's link to its attention
            page.wait_for_selector("#attention-picture[src^='data:image/png']", timeout=120_000)
            assert page.get_attribute("#attention-picture", "data-layer") == "1"
            before = page.get_attribute("#attention-picture", "src")
            box = page.query_selector("#attention-picture").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3)  # row 1, column 2
            page.wait_for_selector("#attention-picture[data-patch='1,2']", timeout=60_000)
            assert page.get_attribute("#attention-picture", "src") != before
            assert "patch (row 1, column 2)" in page.inner_text("#attention-caption")
            assert len(page.query_selector_all("#attention-prediction .bar")) == 3
            page.screenshot(path=str(shots / "attention.png"), full_page=True)
            check_screenshot(shots / "attention.png")

            pacer.go()
            output, _ = training.communicate(timeout=300)
            assert training.returncode == 0, output[-3000:]
            page.click("#tab-live")
            page.wait_for_selector("#run-status .badge.completed", timeout=60_000)
            page.wait_for_selector("#run-pictures img", timeout=60_000)
            page.wait_for_selector("#chart-confusion .heatmaplayer, #chart-confusion .hm", timeout=60_000)
            time.sleep(1.0)  # the pictures load
            page.screenshot(path=str(shots / "completed.png"), full_page=True)
            check_screenshot(shots / "completed.png")
            if os.environ.get("VITCORE_DOCS_SCREENSHOT"):
                page.set_viewport_size({"width": 1280, "height": 860})
                page.screenshot(path=str(DOCS_PICTURE))
            assert not errors, errors
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            print("dashboard printed:\n" + dashboard.printed + "\npage errors: " + "\n".join(errors))
            raise
        finally:
            browser.close()
            if training is not None and training.poll() is None:
                training.kill()


def test_a_long_file_comes_in_pages_and_a_rewritten_one_is_read_anew(tmp_path, start_dashboard):
    """60,000 records (more than one answer holds) all reach the chart; when the file is replaced
    (a resumed run rewrites it), the page drops what it had and reads the new file."""
    import json

    from playwright.sync_api import sync_playwright

    run = tmp_path / "runs" / "long" / "v1"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"status": "running", "epochs_completed": 0}))
    (run / "spec.json").write_text(json.dumps({"train": {"epochs": 2}}))
    line = '{{"event": "train", "epoch": 1, "step": {0}, "loss": {1}, "acc": 0.5, "lr": 0.001}}\n'
    (run / "metrics.jsonl").write_text("".join(line.format(s, 1 / s) for s in range(1, 60_001)))
    dashboard = start_dashboard(tmp_path / "runs")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard.url + "#/run/long/v1")
            page.wait_for_selector("#fact-records:text-is('60000')", timeout=120_000)
            assert points(page, "#chart-lr") == 60_000
            shorter = tmp_path / "rewritten.jsonl"
            shorter.write_text("".join(line.format(s, 2 / s) for s in range(1, 101)))
            os.replace(shorter, run / "metrics.jsonl")
            page.wait_for_selector("#fact-records:text-is('100')", timeout=60_000)
            assert points(page, "#chart-lr") == 100
        finally:
            browser.close()
