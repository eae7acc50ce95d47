"""The jobs and job pages' newer parts in a real browser, against real jobs in Docker:
the image a job really ran in, function names, bulk kill, run again, the interleaved
output view, downloads, live rows; and the screenshots of docs/ui.md."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cloudpipe_sdk import Client
from tests.gateway.conftest import Stack
from tests.gateway.support import job_payload, submit, wait_status
from tests.ui.screens import screenshot
from tests.ui.support import job_row, log_in, log_in_to_jobs, text_of, wait_for

pytestmark = pytest.mark.docker


def double(x: int) -> int:
    return 2 * x


def test_jobs_show_the_image_they_ran_in_and_functions_their_name(
    browser: WebDriver, stack: Stack, http: httpx.Client
) -> None:
    with Client(stack.server.address, api_key=stack.key) as client:
        shell = client.shell("echo plain", name="no-image-given")
        function = client.submit(double, 21)
        shell.wait(60)
        function.wait(60)
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    row = wait_for(browser, lambda d: job_row(d, "completed", shell.id))
    assert row is not None and "cloudpipe/runner-python3:latest" in row.text  # not the gateway's py2 default
    frow = wait_for(browser, lambda d: job_row(d, "completed", function.id))
    assert frow is not None
    link = frow.find_element(By.CSS_SELECTOR, f'a[data-jid="{function.id}"]')
    assert link.text == "tests.ui.test_dashboard.double()"
    assert frow.find_element(By.CSS_SELECTOR, "code").text == "tests.ui.test_dashboard.double()"
    assert "cloudpipe_runner" in (frow.find_element(By.CSS_SELECTOR, "code").get_attribute("title") or "")


def test_bulk_kill_kills_the_selected_jobs_only(browser: WebDriver, stack: Stack, http: httpx.Client) -> None:
    first, second, spared = submit(
        http, *(job_payload("sleep 120", name=f"bulk-{n}") for n in ("one", "two", "spared"))
    )
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    for jid in (first, second, spared):
        wait_for(browser, lambda d, jid=jid: job_row(d, "ongoing", jid), message=f"job {jid} not ongoing")
    for jid in (first, second):
        browser.find_element(By.CSS_SELECTOR, f'input[data-pick="{jid}"]').click()
    kill = browser.find_element(By.ID, "kill-selected")
    assert kill.text == "Kill selected (2)"
    screenshot(browser, "jobs")
    kill.click()
    confirm = wait_for(browser, lambda d: d.switch_to.alert)
    assert confirm.text == "Kill 2 jobs?"
    confirm.accept()
    wait_for(browser, lambda d: text_of(d, "#notice") == "Kill requested for 2 job(s).")
    for jid in (first, second):  # pushed by the live feed: no reload
        wait_for(browser, lambda d, jid=jid: job_row(d, "completed", jid), timeout=30, message=f"{jid} not killed")
        assert wait_status(http, jid, {"killed"})["status"] == "killed"
    assert job_row(browser, "ongoing", spared) is not None
    assert wait_status(http, spared, {"processing"})["status"] == "processing"
    http.post("/v1/job/kill", data={"jid": str(spared)})


def test_the_job_page_interleaves_output_downloads_it_and_runs_the_job_again(
    browser: WebDriver, stack: Stack, http: httpx.Client
) -> None:
    cmd = "for i in 1 2 3; do echo out$i; sleep 0.3; echo err$i >&2; sleep 0.3; done"
    (jid,) = submit(http, job_payload(cmd, name="interleaved"))
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.get(f"{stack.url}/ui/job.html?jid={jid}")
    wait_for(browser, lambda d: "Done" in text_of(d, "#status"), timeout=60, message="never done")
    wait_for(browser, lambda d: text_of(d, "#stderr") == "err1\nerr2\nerr3")
    assert text_of(browser, "#stdout") == "out1\nout2\nout3"

    browser.find_element(By.ID, "interleave").click()
    combined = browser.find_element(By.ID, "combined")
    assert combined.is_displayed() and not browser.find_element(By.ID, "stdout").is_displayed()
    assert sorted(combined.text.split()) == sorted(["out1", "out2", "out3", "err1", "err2", "err3"])
    assert [span.text for span in combined.find_elements(By.CSS_SELECTOR, "span.stderr")]  # stderr marked
    screenshot(browser, "job")

    download = http.get("/ui/api/job/output", params={"jid": jid, "part": "stdout"})
    assert download.status_code == 200 and download.content == b"out1\nout2\nout3\n"
    assert download.headers["content-disposition"] == f'attachment; filename="job-{jid}.stdout"'
    browser.find_element(By.ID, "download-stdout").click()  # through fetch + a blob: no error shown
    assert text_of(browser, "#error") == ""

    browser.find_element(By.ID, "rerun").click()
    link = wait_for(browser, lambda d: d.find_elements(By.ID, "rerun-link"), message="no new job")[0]
    new_jid = int(link.text.split()[-1])
    assert new_jid > jid
    link.click()
    wait_for(browser, lambda d: "Done" in text_of(d, "#status"), timeout=60, message="the re-run never ended")
    wait_for(browser, lambda d: text_of(d, "#stdout") == "out1\nout2\nout3")
    assert f"Job {jid}" in text_of(browser, "#details")  # "Run again from"


def test_screenshots_of_the_login_and_profile_pages(browser: WebDriver, stack: Stack) -> None:
    browser.get(f"{stack.url}/ui/")
    wait_for(browser, lambda d: d.find_element(By.ID, "login").is_displayed())
    screenshot(browser, "login")
    log_in(browser, stack.url, "admin", stack.key)
    wait_for(browser, lambda d: d.current_url.endswith("/ui/jobs.html"))
    browser.find_element(By.LINK_TEXT, "Profile").click()
    wait_for(browser, lambda d: stack.server.address in text_of(d, "#sdk-snippet"))
    screenshot(browser, "profile")
