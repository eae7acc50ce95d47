"""A busy account in a real browser: 5,000 jobs and several 10 MB outputs (and 10 MB
inputs). The jobs page loads a page of summaries, never any output or input, stays
live, pages on; a 10 MB job's page shows its tail. Load times are measured and printed
(not asserted: this machine is shared)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.gateway.conftest import Stack
from tests.gateway.support import job_payload, start_gateway, submit
from tests.support import start_server
from tests.ui.screens import screenshot
from tests.ui.support import job_row, log_in, text_of, wait_for

pytestmark = pytest.mark.docker

MANY = 5000
TEN_MB = 10 << 20
BIG_OUTPUT = f"head -c {TEN_MB} /dev/zero | tr '\\0' x"


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[int]]]:
    """A server and gateway of their own whose admin has 5,001 killed jobs, then three
    jobs that printed 10 MB and two that read 10 MB of stdin (the newest)."""
    data_dir = tmp_path_factory.mktemp("busy-server")
    server = start_server(data_dir)
    gateway = start_gateway(server.address, data_dir)
    md = (("authorization", f"Bearer {server.api_key}"),)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.JobServiceStub(channel)
            # The 5,000 wait on one gate job, so they never start a container; killing
            # them all kills the gate and settles every waiting job at once.
            (gate,) = stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 600")]), timeout=30, metadata=md).ids
            many = [pb.JobSpec(cmd="true", name=f"busy-{n}", depends_on=[gate]) for n in range(MANY)]
            stub.Submit(pb.SubmitRequest(jobs=many), timeout=120, metadata=md)
            stub.KillAll(pb.KillAllRequest(), timeout=120, metadata=md)
            big = [pb.JobSpec(cmd=BIG_OUTPUT, name=f"prints-10mb-{n}") for n in range(3)]
            big += [pb.JobSpec(cmd="wc -c", name=f"reads-10mb-{n}", stdin=b"i" * TEN_MB) for n in range(2)]
            ids = list(stub.Submit(pb.SubmitRequest(jobs=big), timeout=120, metadata=md).ids)
            seen: list[tuple[int, str]] = []
            try:
                # Well inside the tests' own timeout, so a late job fails with what it was doing.
                for event in stub.WatchMany(pb.WatchManyRequest(ids=ids), timeout=200, metadata=md):
                    seen.append((event.id, pb.JobStatus.Name(event.status)))
                    assert event.status == pb.JOB_STATUS_DONE, event
            except grpc.RpcError as error:
                # summaries: a full Get of a 10 MB job is over the client's 4 MiB answer limit
                summary = pb.JOB_VIEW_SUMMARY
                jobs = [stub.Get(pb.GetJobRequest(id=jid, view=summary), timeout=30, metadata=md) for jid in ids]
                statuses = [(pb.JobStatus.Name(job.status), job.reason) for job in jobs]
                pytest.fail(
                    f"the 10 MB jobs did not finish ({error.code()}): {statuses}; watched: {seen}\n{server.log[-4000:]}"
                )
        yield Stack(server, gateway), ids
    finally:
        with httpx.Client(base_url=gateway.url, auth=("admin", server.api_key), timeout=30) as client:
            client.post("/v1/job/kill_all")
        gateway_rc, server_rc = gateway.stop(), server.stop()
        assert gateway_rc == 0, gateway.log
        assert server_rc == 0, server.log


def test_the_busy_jobs_page_loads_summaries_only_and_stays_live(
    browser: WebDriver, busy: tuple[Stack, list[int]]
) -> None:
    stack, big = busy
    browser.get(f"{stack.url}/ui/")
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    started = time.monotonic()
    log_in(browser, stack.url, "admin", stack.key)
    wait_for(browser, lambda d: text_of(d, "#updated").startswith("Updated"), timeout=30, message="never loaded")
    wall = time.monotonic() - started
    page_ms = browser.find_element(By.TAG_NAME, "body").get_attribute("data-load-ms")
    print(f"\nbusy account ({MANY + 1 + len(big)} jobs): list loaded in {page_ms} ms (page), {wall:.2f} s from log-in")

    assert text_of(browser, "#completed-heading") == "Completed (50+)"
    rows = browser.find_elements(By.CSS_SELECTOR, "#completed tbody tr")
    assert len(rows) == 50
    first = int(rows[0].find_element(By.TAG_NAME, "td").text)
    assert first == max(big)  # newest first
    for jid in big:
        assert job_row(browser, "completed", jid) is not None

    # What the page fetched: summaries only, never /v1/job, never megabytes.
    entries = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => [e.name, e.transferSize, e.encodedBodySize])"
    )
    api = [(name, size) for name, size, _ in entries if "/ui/api/jobs?" in name]
    assert api, entries
    assert not [name for name, _, _ in entries if "/v1/job" in name]
    assert all(size < 100_000 for _, size in api), api
    print(f"list requests: {[size for _, size in api]} bytes")
    with httpx.Client(base_url=stack.url, auth=("admin", stack.key), timeout=30) as http:
        page = http.get("/ui/api/jobs", params={"status": "done,error,killed,stalled"}).json()
        assert len(page["jobs"]) == 50 and page["next_before"]
        assert all(set(job) & {"stdout", "stderr", "stdin", "result"} == set() for job in page["jobs"])

        # Live: a new job shows up without reloading.
        (new,) = submit(http, job_payload("true", name="arrives-on-a-busy-day"))
        wait_for(browser, lambda d: job_row(d, "completed", new) or job_row(d, "ongoing", new), timeout=30)
        screenshot(browser, "jobs-busy", whole_page=False)

    # Paging: older jobs, 50 at a time.
    browser.find_element(By.ID, "completed-more").click()
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#completed tbody tr")) >= 100)
    older = browser.find_elements(By.CSS_SELECTOR, "#completed tbody tr")
    jids = [int(row.find_element(By.TAG_NAME, "td").text) for row in older]
    assert jids == sorted(jids, reverse=True) and len(set(jids)) == len(jids)

    # Filters run on the server side of the gateway: one name among 5,000.
    browser.find_element(By.ID, "name-filter").send_keys("busy-4321")
    wait_for(browser, lambda d: text_of(d, "#completed-heading") == "Completed (1)", timeout=30)
    assert "busy-4321" in text_of(browser, "#completed")


def test_a_10_mb_job_page_shows_the_tail_and_offers_the_whole(
    browser: WebDriver, busy: tuple[Stack, list[int]]
) -> None:
    stack, big = busy
    browser.get(f"{stack.url}/ui/")
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    log_in(browser, stack.url, "admin", stack.key)
    wait_for(browser, lambda d: d.current_url.endswith("/ui/jobs.html"))
    started = time.monotonic()
    browser.get(f"{stack.url}/ui/job.html?jid={big[0]}")
    wait_for(browser, lambda d: "Showing the last 2 MB" in text_of(d, "#output-note"), timeout=60)
    print(f"\n10 MB job page: output shown in {time.monotonic() - started:.2f} s")
    shown = browser.execute_script("return document.getElementById('stdout').textContent.length")
    assert shown == 2 << 20
    with httpx.Client(base_url=stack.url, auth=("admin", stack.key), timeout=60) as http:
        whole = http.get("/ui/api/job/output", params={"jid": big[0], "part": "stdout"})
        assert len(whole.content) == TEN_MB
