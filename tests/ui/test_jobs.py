"""The jobs and job pages in a real browser, against real jobs in Docker: statuses,
live output, kill, filters, and job data rendered as text only."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.gateway.conftest import Stack
from tests.gateway.support import job_payload, start_gateway, submit, wait_status
from tests.lost_runner import a_job_run_twice
from tests.ui.screens import screenshot
from tests.ui.support import definitions, job_row, log_in_to_jobs, text_of, wait_for, wait_visible

pytestmark = pytest.mark.docker

SCREENSHOT = "/tmp/cloudpipe-ui-jobs.png"
XSS_NAME = "<img src=x onerror=alert(1)>"


def shown_row(driver: WebDriver, section: str, jid: int) -> str:
    """The text of job `jid`'s row in `section`, once the page shows it there."""
    row = wait_for(driver, lambda d: job_row(d, section, jid), message=f"job {jid} not in {section}")
    assert row is not None
    return str(row.text)


def test_jobs_are_listed_as_ongoing_or_completed_with_their_statuses(
    browser: WebDriver, stack: Stack, http: httpx.Client
) -> None:
    done, failed, running = submit(
        http,
        job_payload("echo hello", name="says-hello"),
        job_payload("exit 3", name="fails"),
        job_payload("sleep 120", name="sleeps"),
    )
    wait_status(http, done, {"done"})
    wait_status(http, failed, {"error"})
    wait_status(http, running, {"processing"})

    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    row = shown_row(browser, "ongoing", running)
    assert "sleeps" in row and "Processing" in row
    assert re.search(r"running for \d", row), row
    ongoing = job_row(browser, "ongoing", running)
    assert ongoing is not None and ongoing.find_elements(By.CSS_SELECTOR, ".status .spinner")

    row = shown_row(browser, "completed", done)
    assert "says-hello" in row and "Done" in row and "echo hello" in row
    done_row = job_row(browser, "completed", done)
    assert done_row is not None
    assert done_row.find_elements(By.CSS_SELECTOR, ".status-done")
    finished = done_row.find_element(By.TAG_NAME, "time")
    assert re.fullmatch(r"now|\d+ seconds? ago|\d+ minutes? ago", finished.text), finished.text
    assert re.search(r"\d{4}", finished.get_attribute("title") or ""), "no absolute time in the tooltip"

    failed_row = job_row(browser, "completed", failed)
    assert failed_row is not None and "Error" in failed_row.text
    assert not failed_row.find_elements(By.CSS_SELECTOR, ".status-done")  # success styling only for done
    assert job_row(browser, "ongoing", done) is None

    browser.save_screenshot(SCREENSHOT)  # looked at by hand, never committed
    http.post("/v1/job/kill", data={"jid": str(running)})


def test_filters_by_status_and_name(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    alpha, beta = submit(http, job_payload("true", name="filter-alpha"), job_payload("false", name="filter-beta"))
    wait_status(http, alpha, {"done"})
    wait_status(http, beta, {"error"})
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    shown_row(browser, "completed", alpha)
    shown_row(browser, "completed", beta)

    Select(browser.find_element(By.ID, "status-filter")).select_by_visible_text("Error")
    assert job_row(browser, "completed", alpha) is None
    assert job_row(browser, "completed", beta) is not None

    Select(browser.find_element(By.ID, "status-filter")).select_by_visible_text("All")
    browser.find_element(By.ID, "name-filter").send_keys("ALPHA")
    assert job_row(browser, "completed", alpha) is not None
    assert job_row(browser, "completed", beta) is None
    assert text_of(browser, "#ongoing") == "No ongoing jobs match the filters."

    browser.find_element(By.ID, "name-filter").send_keys("-nothing-like-it")
    assert text_of(browser, "#completed-heading") == "Completed (0)"


def test_a_new_job_appears_without_reloading(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    (jid,) = submit(http, job_payload("true", name="arrives-later"))
    row = shown_row(browser, "completed", jid)  # auto-refresh: queued, then done
    assert "arrives-later" in row


def test_a_running_job_shows_its_output_growing(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    (jid,) = submit(http, job_payload("for i in $(seq 1 40); do echo line$i; echo err$i >&2; sleep 0.5; done"))
    wait_status(http, jid, {"processing"})
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.get(f"{stack.url}/ui/job.html?jid={jid}")

    first = wait_for(browser, lambda d: text_of(d, "#stdout") if "line2" in text_of(d, "#stdout") else "")
    assert "Processing" in text_of(browser, "#status")
    later = wait_for(browser, lambda d: text_of(d, "#stdout") if len(text_of(d, "#stdout")) > len(first) else "")
    assert later.startswith(first)
    assert "Processing" in text_of(browser, "#status")
    assert "err1" in text_of(browser, "#stderr")
    details = text_of(browser, "#details")
    assert re.search(r"Runtime\s+\d+ s so far", details), details
    http.post("/v1/job/kill", data={"jid": str(jid)})


def test_the_job_page_shows_command_image_times_and_exit(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    (jid,) = submit(http, job_payload("echo to-out; echo to-err >&2; exit 7", name="exits-seven"))
    wait_status(http, jid, {"error"})
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.get(f"{stack.url}/ui/job.html?jid={jid}")
    wait_for(browser, lambda d: "Error" in text_of(d, "#status"))

    assert text_of(browser, "h1") == f"Job {jid}: exits-seven"
    # The list is redrawn as the job's last fields arrive: wait for the finished job's.
    details = wait_for(
        browser,
        lambda d: (found := definitions(d, "#details")).get("Return code") == "7" and found,
        message="the job's details never showed its exit code",
    )
    assert details["Command"] == "echo to-out; echo to-err >&2; exit 7"
    assert details["Image"] == "cloudpipe/runner-py2:latest"
    assert details["Return code"] == "7"
    assert details["Reason"] not in ("", "—")
    for stamp in ("Created", "Started", "Finished"):
        assert re.search(r"\d{4}.*\(.*\)", details[stamp]), details
    assert details["Runtime"] != "—"
    assert text_of(browser, "#stdout") == "to-out"
    assert text_of(browser, "#stderr") == "to-err"
    assert not browser.find_element(By.ID, "kill").is_displayed()
    assert not browser.find_element(By.ID, "attempts-section").is_displayed(), "one attempt: the details say it all"


def test_the_job_page_lists_the_attempts_of_a_job_that_ran_twice(
    browser: WebDriver, stack: Stack, tmp_path: Path
) -> None:
    """A restartable job whose server was killed mid-run ran again on the next server:
    the page's Attempts table has the lost attempt (requeued) and the one that ended done."""
    server, jid = a_job_run_twice(tmp_path)
    try:
        gateway = start_gateway(server.address, tmp_path)
        try:
            log_in_to_jobs(browser, gateway.url, "admin", server.api_key)
            browser.get(f"{gateway.url}/ui/job.html?jid={jid}")
            wait_for(browser, lambda d: "Done" in text_of(d, "#status"))
            section = wait_visible(browser, "attempts-section")
            assert section.find_element(By.TAG_NAME, "h2").text == "Attempts"
            rows = [
                [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
                for row in browser.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
            ]
            assert len(rows) == 2, rows
            (n1, outcome1, _, _, _, code1, server1, reason1), (n2, outcome2, _, _, _, code2, server2, reason2) = rows
            assert (n1, code1) == ("1", "—") and "Requeued" in outcome1
            assert "requeued after its runner was lost" in reason1
            assert (n2, code2, reason2) == ("2", "0", "—") and "Done" in outcome2
            assert server1 and server2 and server1 != server2, "another server ran it again"
            assert definitions(browser, "#details")["Attempts"].startswith("2 (retried 1 time")
            screenshot(browser, "job-attempts")
        finally:
            assert gateway.stop() == 0, gateway.log
    finally:
        assert server.stop() == 0, server.log


def test_kill_from_the_job_page_ends_the_job_killed(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    (jid,) = submit(http, job_payload("sleep 120", name="to-kill"))
    wait_status(http, jid, {"processing"})
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.get(f"{stack.url}/ui/job.html?jid={jid}")
    kill = wait_visible(browser, "kill")

    kill.click()
    confirm = wait_for(browser, lambda d: d.switch_to.alert)
    assert confirm.text == f"Kill job {jid}?"
    confirm.accept()
    wait_for(browser, lambda d: text_of(d, "#notice") == f"Kill requested for job {jid}.")
    wait_for(browser, lambda d: "Killed" in text_of(d, "#status"), timeout=30, message="never shown killed")
    assert not browser.find_element(By.ID, "kill").is_displayed()
    assert browser.switch_to.active_element == browser.find_element(By.ID, "title")  # focus not lost
    assert wait_status(http, jid, {"killed"}, timeout=5)["status"] == "killed"


def test_cancelling_the_kill_confirmation_kills_nothing(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    (jid,) = submit(http, job_payload("sleep 120", name="spared"))
    wait_status(http, jid, {"processing"})
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.get(f"{stack.url}/ui/job.html?jid={jid}")
    kill = wait_visible(browser, "kill")
    kill.click()
    wait_for(browser, lambda d: d.switch_to.alert).dismiss()
    assert text_of(browser, "#notice") == ""
    assert wait_status(http, jid, {"processing"})["status"] == "processing"
    http.post("/v1/job/kill", data={"jid": str(jid)})


def test_job_data_is_rendered_as_text_never_as_html(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    """XSS: a job named `<img src=x onerror=alert(1)>` whose output is HTML shows those
    characters, and no element is made from them (CSP aside: the DOM itself is checked)."""
    cmd = "echo '<script>window.pwned=1</script><b>bold</b>'; echo '<img src=y onerror=alert(2)>' >&2"
    (jid,) = submit(http, job_payload(cmd, name=XSS_NAME, tags={"<i>": "<u>"}))
    wait_status(http, jid, {"done"})

    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    row = shown_row(browser, "completed", jid)
    assert XSS_NAME in row
    link = browser.find_element(By.CSS_SELECTOR, f'a[data-jid="{jid}"]')
    assert link.text == XSS_NAME
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main b, main script") == []
    code = browser.find_element(By.CSS_SELECTOR, f'a[data-jid="{jid}"]').find_element(By.XPATH, "ancestor::tr//code")
    assert code.get_attribute("title") == cmd

    link.click()
    wait_for(browser, lambda d: "Done" in text_of(d, "#status"))
    assert text_of(browser, "h1") == f"Job {jid}: {XSS_NAME}"
    assert text_of(browser, "#stdout") == "<script>window.pwned=1</script><b>bold</b>"
    assert text_of(browser, "#stderr") == "<img src=y onerror=alert(2)>"
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main b, main script") == []
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.title == f"Job {jid} · Cloudpipe"
