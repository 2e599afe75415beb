"""report.html opens in a real browser: headless Chromium renders it and we look at the pixels."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); "
                                             "the report's rendering in a browser is not checked here")
def test_the_report_renders_in_headless_chromium(shapes_run, tmp_path):
    report = shapes_run / "report.html"
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400", f"--screenshot={shot}",
         report.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels.std() > 20, "the page shows text and pictures, not a blank screen"
    # The embedded pictures render: plenty of pixels that are neither white nor text-black.
    coloured = ((pixels.max(axis=2) - pixels.min(axis=2)) > 60).mean()
    assert coloured > 0.02
