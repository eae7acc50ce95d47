"""The schedules and saved jobs pages in a real browser against a real server: next
fire, last outcome and history, pause / resume / fire now, saved job versions and a run
with overrides that leads to its job; and their screenshots for docs/ui.md."""

from __future__ import annotations

import secrets

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from cloudpipe_sdk import Client
from tests.gateway.conftest import Stack
from tests.ui.screens import screenshot
from tests.ui.support import log_in_to_jobs, text_of, wait_for

MARKUP = "<img src=x onerror=alert(1)>"


def row_of(driver: WebDriver, name: str) -> str:
    rows = driver.find_elements(By.CSS_SELECTOR, f'#schedules tr[data-schedule="{name}"]')
    return str(rows[0].text) if rows else ""


def test_the_schedules_page_shows_next_fire_and_history_and_pauses_resumes_and_fires(
    browser: WebDriver, stack: Stack, http: httpx.Client
) -> None:
    tag = secrets.token_hex(3)
    report, nightly, hourly = f"report-{tag}", f"nightly-{tag}", f"hourly-{tag}"
    with Client(stack.server.address, api_key=stack.key) as client:
        client.saved_jobs.save_shell(report, "echo report", description="the daily report")
        client.schedules.create(
            nightly, "30 2 * * *", saved_job=report, timezone="Europe/Berlin", description="before breakfast"
        )
        client.schedules.create(hourly, "@hourly", job=client.saved_jobs.get(report).spec, description=MARKUP)
        client.schedules.trigger(hourly)
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.find_element(By.LINK_TEXT, "Schedules").click()
    wait_for(browser, lambda d: row_of(d, nightly), message="the schedule is not listed")
    text = row_of(browser, nightly)
    assert "30 2 * * *" in text and "Europe/Berlin" in text and report in text and "Never fired" in text
    assert MARKUP in row_of(browser, hourly)  # shown as text, never as HTML
    assert not browser.find_elements(By.CSS_SELECTOR, "#schedules img")
    next_fire = browser.find_element(By.CSS_SELECTOR, f'tr[data-schedule="{nightly}"] td.next-fire time')
    assert next_fire.text.startswith("in ")  # "in 5 hours"
    wait_for(browser, lambda d: "Job " in row_of(d, hourly), message="the hourly's fire is not shown")

    def click(action: str, name: str) -> None:
        browser.find_element(By.CSS_SELECTOR, f'button[data-action="{action}"][data-schedule="{name}"]').click()

    click("pause", nightly)
    wait_for(browser, lambda d: text_of(d, "#notice") == f"{nightly} paused.")
    wait_for(browser, lambda d: "Paused" in row_of(d, nightly))
    click("resume", nightly)
    wait_for(browser, lambda d: text_of(d, "#notice") == f"{nightly} resumed.")
    wait_for(browser, lambda d: "Paused" not in row_of(d, nightly) and "Pause" in row_of(d, nightly))

    click("trigger", nightly)
    notice = wait_for(
        browser, lambda d: text_of(d, "#notice").startswith(f"Fired {nightly}: job ") and text_of(d, "#notice")
    )
    jid = int(notice.rstrip(".").split()[-1])
    history = f'tr[data-history="{nightly}"]'
    wait_for(browser, lambda d: f"Job {jid}" in text_of(d, history), message="the fire is not in the history")
    assert "Fired by hand" in text_of(browser, history)
    wait_for(browser, lambda d: f"Job {jid}" in row_of(d, nightly), message="no last outcome")
    wait_for(browser, lambda d: "Done" in row_of(d, nightly), timeout=30, message="the fired job never finished")
    screenshot(browser, "schedules")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-schedule="{nightly}"] a[href^="job.html"]').click()
    wait_for(browser, lambda d: "Done" in text_of(d, "#status"), message="the fire's job page")


def test_the_saved_jobs_page_lists_versions_and_runs_with_overrides(browser: WebDriver, stack: Stack) -> None:
    name = f"greet-{secrets.token_hex(3)}"
    with Client(stack.server.address, api_key=stack.key) as client:
        client.saved_jobs.save_shell(name, "echo hello", env={"WHO": "world"})
        client.saved_jobs.save_shell(name, "echo hello again", env={"WHO": "world"}, description="louder")
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.find_element(By.LINK_TEXT, "Saved jobs").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-saved="{name}"]'), message="not listed")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-saved="{name}"]')
    assert "echo hello again" in row.text and "louder" in row.text
    row.find_element(By.LINK_TEXT, name).click()
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#versions tr[data-version]")) == 2)
    versions = [v.text for v in browser.find_elements(By.CSS_SELECTOR, "#versions tr[data-version]")]
    assert versions[0].startswith("2") and "echo hello again" in versions[0] and "WHO=world" in versions[0]
    assert versions[1].startswith("1") and "echo hello" in versions[1]

    Select(browser.find_element(By.ID, "run-version")).select_by_visible_text("Version 1")
    browser.find_element(By.ID, "run-args").send_keys("from the UI")
    browser.find_element(By.ID, "run-env").send_keys("WHO=you")
    browser.find_element(By.ID, "run-max-runtime").send_keys("60")
    screenshot(browser, "saved-jobs")
    browser.find_element(By.ID, "run-submit").click()
    link = wait_for(browser, lambda d: d.find_elements(By.ID, "run-link"), message="no job started")[0]
    assert text_of(browser, "#notice").startswith(f"Started version 1 of {name}: Job ")
    link.click()
    wait_for(browser, lambda d: "Done" in text_of(d, "#status"), message="the run never finished")
    details = text_of(browser, "#details")
    assert "echo hello 'from the UI'" in details and name in details


def test_a_bad_override_is_explained_on_the_page(browser: WebDriver, stack: Stack) -> None:
    name = f"strict-{secrets.token_hex(3)}"
    with Client(stack.server.address, api_key=stack.key) as client:
        client.saved_jobs.save_shell(name, "true")
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.get(f"{stack.url}/ui/saved-jobs.html?name={name}")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#versions tr[data-version]"))
    browser.find_element(By.ID, "run-env").send_keys("NOT A PAIR")
    browser.find_element(By.ID, "run-submit").click()
    wait_for(browser, lambda d: "is not KEY=VALUE" in text_of(d, "#error"), message="no error shown")
    assert not browser.find_elements(By.ID, "run-link")
