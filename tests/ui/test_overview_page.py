"""The overview page and GET /ui/api/usage against a real server: queue tiles, the last
hour's chart, running jobs, and every account's row for the admin only."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.gateway.conftest import Stack
from tests.gateway.conftest import as_account as as_account
from tests.gateway.conftest import trusting as trusting
from tests.gateway.conftest import trustings as trustings
from tests.gateway.support import assert_api_error, job_payload, submit
from tests.ui.screens import screenshot
from tests.ui.support import log_in_to_jobs, text_of, wait_for


def test_usage_is_the_callers_and_every_accounts_only_for_the_admin(
    http: httpx.Client, as_account: Callable[[str], httpx.Client]
) -> None:
    ids = submit(http, *(job_payload("true") for _ in range(3)))
    deadline = time.monotonic() + 30
    while sum((usage := http.get("/ui/api/usage").json())["done_per_minute"]) < len(ids):
        assert time.monotonic() < deadline, usage
        time.sleep(0.2)
    assert usage["window_minutes"] == 60 and len(usage["failed_per_minute"]) == 60
    assert set(usage["counts"]) >= {"queued", "done"} and usage["accounts"] == []
    everyone = http.get("/ui/api/usage", params={"all": "1"}).json()
    assert "admin" in [row["account"] for row in everyone["accounts"]]
    assert_api_error(http.get("/ui/api/usage", params={"window": "2000"}), 400, "QINVAL")
    alice, bob = as_account("alice-usage"), as_account("bob-usage")
    submit(bob, job_payload("true"))
    assert sum(alice.get("/ui/api/usage").json()["counts"].values()) == 0  # bob's job is not alice's
    assert_api_error(alice.get("/ui/api/usage", params={"all": "1"}), 403, "AFAIL")


def test_the_overview_shows_the_queue_the_last_hour_and_every_account(
    browser: WebDriver, stack: Stack, http: httpx.Client
) -> None:
    submit(http, *(job_payload("true") for _ in range(4)), job_payload("exit 1"))
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.find_element(By.LINK_TEXT, "Overview").click()
    wait_for(browser, lambda d: text_of(d, "#updated").startswith("Updated"), message="never loaded")
    assert browser.find_elements(By.CSS_SELECTOR, '#queue .tile[data-status="queued"]')
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#chart svg rect.done"), timeout=30)
    assert "done" in text_of(browser, "#hour-summary")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#accounts-table tr[data-account="admin"]'))
    assert "Quotas per account" in text_of(browser, "#quotas")
    screenshot(browser, "overview")
