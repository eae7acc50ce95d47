"""Kill, kill_all and queue_stats (spec 2.4.4, 2.4.5, 7.1 #12, 7.9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import CONCURRENT_JOBS
from tests.gateway.support import assert_api_error, get_job, job_payload, submit, wait_status

NO_IMAGE = "cloudpipe/no-such-image:never"
FORM = {"content-type": "application/x-www-form-urlencoded"}
TEXT = "text/plain; charset=utf-8"
JID_HINT = "Please provide a valid integer job ID to Job: Kill."


def kill(
    client: httpx.Client, body: str, headers: dict[str, str] | None = None, method: str = "POST"
) -> httpx.Response:
    return client.request(method, "/v1/job/kill", content=body.encode(), headers=FORM if headers is None else headers)


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == TEXT
    assert response.content == b'{"status":"ok"}'


@pytest.mark.docker
def test_a_queued_job_is_reported_queued_then_killed_and_running_ones_are_killed(http: httpx.Client) -> None:
    """7.1 #2 and #12: with every slot busy a new job stays queued, without started_at or
    finished_at; killing it makes it killed at once; killing a running job kills it within seconds."""
    blockers = [job_payload("sleep 60", name=f"blocker{i}") for i in range(CONCURRENT_JOBS)]
    *running, queued = submit(http, *blockers, job_payload("echo never", name="queued"))
    for jid in running:
        wait_status(http, jid, {"processing"})
    job = get_job(http, queued)
    assert job["status"] == "queued"
    assert "started_at" not in job and "finished_at" not in job
    assert job["return_code"] == ""

    assert_ok(kill(http, f"jid={queued}"))
    assert get_job(http, queued)["status"] == "killed"
    for jid in running:
        assert_ok(kill(http, f"jid={jid}"))
    for jid in running:
        job = wait_status(http, jid, {"killed"}, timeout=20)
        assert "started_at" in job and "finished_at" in job


@pytest.mark.docker
def test_killing_a_finished_job_is_ok_and_changes_nothing(http: httpx.Client) -> None:
    """DECISION: multyvac documents "nothing changes"; Go answered 500 JKILL here."""
    (jid,) = submit(http, job_payload('echo "success"'))
    before = wait_status(http, jid, {"done"})
    assert_ok(kill(http, f"jid={jid}"))
    assert get_job(http, jid) == before


def test_only_the_first_jid_of_the_body_counts(http: httpx.Client) -> None:
    first, second = submit(http, job_payload("true", layer=[{"name": NO_IMAGE}]), job_payload("true"))
    response = kill(http, f"jid={first}&jid=999999999&sudo=true")
    assert_ok(response)
    assert_api_error(kill(http, f"jid=999999999&jid={second}"), 404, "JNF")


@pytest.mark.parametrize(
    ("body", "headers", "method", "message"),
    [
        (
            "",
            FORM,
            "POST",
            'Unable to parse Job: Kill payload as a valid JID: strconv.ParseUint: parsing "": invalid syntax',
        ),
        (
            "jid=abc",
            FORM,
            "POST",
            'Unable to parse Job: Kill payload as a valid JID: strconv.ParseUint: parsing "abc": invalid syntax',
        ),
        ("jid=12", {}, "POST", None),  # no Content-Type: Go parses no form
        ("jid=12", {"content-type": "multipart/form-data; boundary=x"}, "POST", None),
        ("jid=12", FORM, "GET", None),  # only POST, PUT and PATCH bodies are forms
    ],
)
def test_a_missing_or_bad_jid_is_jfrm(
    http: httpx.Client, body: str, headers: dict[str, str], method: str, message: str | None
) -> None:
    error = assert_api_error(kill(http, body, headers, method), 400, "JFRM", message)
    assert error["hint"] == JID_HINT
    assert error["message"].startswith("Unable to parse Job: Kill payload as a valid JID: ")


def test_a_jid_in_the_query_string_is_ignored(http: httpx.Client) -> None:
    response = http.post("/v1/job/kill?jid=1", content=b"", headers=FORM)
    assert_api_error(response, 400, "JFRM")


@pytest.mark.parametrize(
    ("body", "headers", "detail"),
    [
        ("jid=%zz", FORM, 'invalid URL escape "%zz"'),
        ("jid=1", {"content-type": "; charset=utf-8"}, "mime: no media type"),
        ("jid=1", {"content-type": "form"}, "mime: expected slash after first token"),
    ],
)
def test_a_body_that_is_not_a_form_is_jfrm(http: httpx.Client, body: str, headers: dict[str, str], detail: str) -> None:
    error = assert_api_error(
        kill(http, body, headers), 400, "JFRM", f"Unable to parse Job: Kill payload as a POST body: {detail}"
    )
    assert error["hint"] == "Please use valid form encoding in your request."


@pytest.mark.parametrize("jid", ["999999999", "0", "18446744073709551615"])
def test_killing_an_unknown_job_is_jnf(http: httpx.Client, jid: str) -> None:
    """DECISION: the JID is printed as [N], not Go's `[%!s(uint64=N)]`."""
    error = assert_api_error(kill(http, f"jid={jid}"), 404, "JNF", f"Unable to find a job with ID [{jid}].")
    assert error["hint"] == "Make sure that the JID is still valid."


def test_another_accounts_job_cannot_be_killed_even_with_sudo(as_account: Callable[[str], httpx.Client]) -> None:
    """DECISION: sudo=true changes nothing until the server has an admin-only cross-account kill."""
    owner, other = as_account("owner"), as_account("intruder")
    (jid,) = submit(owner, job_payload("true", layer=[{"name": NO_IMAGE}]))
    assert_api_error(kill(other, f"jid={jid}&sudo=true"), 404, "JNF")


@pytest.mark.docker
def test_kill_all_kills_every_unfinished_job_of_the_account(as_account: Callable[[str], httpx.Client]) -> None:
    client, bystander = as_account("killer"), as_account("bystander")
    (running,) = submit(client, job_payload("sleep 60"))
    waiting = submit(client, *[job_payload("true", depends_on=running)] * 3)
    (spared,) = submit(bystander, job_payload("sleep 60"))
    wait_status(client, running, {"processing"})
    assert get_job(client, waiting[0])["status"] == "waiting"

    assert_ok(client.post("/v1/job/kill_all"))
    for jid in waiting:
        assert get_job(client, jid)["status"] == "killed"
    wait_status(client, running, {"killed"}, timeout=20)
    assert get_job(bystander, spared)["status"] in ("queued", "processing")
    assert_ok(bystander.post("/v1/job/kill_all"))
    wait_status(bystander, spared, {"killed"}, timeout=20)


def test_kill_all_needs_post_and_credentials(anon: httpx.Client) -> None:
    assert_api_error(anon.get("/v1/job/kill_all"), 405, "MINVAL", "Method not supported")
    assert_api_error(anon.post("/v1/job/kill_all"), 401, "ANONE")


def test_queue_stats_counts_the_accounts_jobs_per_status(as_account: Callable[[str], httpx.Client]) -> None:
    client = as_account("statistician")
    empty = client.get("/v1/job/queue_stats")
    assert empty.status_code == 200
    assert empty.headers["content-type"] == "application/json"
    stats: dict[str, Any] = empty.json()["stats"]
    assert {"queued", "processing"} <= set(stats)
    assert set(stats.values()) == {0}
    submit(client, *[job_payload("true", layer=[{"name": NO_IMAGE}])] * 2)
    assert sum(client.get("/v1/job/queue_stats").json()["stats"].values()) == 2
