"""Screenshots of the pages, saved by the tests to docs/ui/ (linked from docs/ui.md)."""

from __future__ import annotations

import base64
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

from tests.support import ROOT

SCREENSHOTS = ROOT / "docs" / "ui"


def screenshot(driver: WebDriver, name: str) -> None:
    """Save the whole page (beyond the window, up to its end) as docs/ui/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chrome: Any = driver
    shot = chrome.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
