"""Screenshots of the pages, saved by the tests to docs/ui/ (linked from docs/ui.md)."""

from __future__ import annotations

import base64
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

from tests.support import ROOT

SCREENSHOTS = ROOT / "docs" / "ui"


def screenshot(driver: WebDriver, name: str, *, whole_page: bool = True) -> None:
    """Save the page as docs/ui/<name>.png: all of it, or only what the window shows."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chrome: Any = driver
    shot = chrome.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": whole_page})
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
