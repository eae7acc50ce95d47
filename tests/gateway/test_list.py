"""GET /v1/job: filters, limits, bounds, QINVAL variants and the job JSON (spec 2.4.3, 3.7, 7.1, 7.9)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.gateway.support import GatewayProcess, assert_api_error, job_payload, submit
from tests.support import PerExecutor

NO_IMAGE = "cloudpipe/no-such-image:never"
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
GO_FIELD_ORDER = (
    *("cmd", "name", "core", "multicore", "restartable", "tags", "layer", "vol", "env", "result_source"),
    *("result_type", "max_runtime", "stdin", "profile", "created_at", "started_at", "finished_at", "status"),
    *("result", "return_code", "runtime", "queue_delay", "overhead_delay", "stderr", "stdout", "collected", "jid"),
)


def quick(cmd: str, **fields: Any) -> dict[str, Any]:
    return job_payload(cmd, layer=[{"name": NO_IMAGE}], **fields)


def listed(client: httpx.Client, query: str) -> list[int]:
    response = client.get(f"/v1/job?{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"\n")
    return [job["jid"] for job in response.json()["jobs"]]


@pytest.fixture(scope="module")
def fresh(trustings: PerExecutor[GatewayProcess]) -> Iterator[tuple[httpx.Client, list[int]]]:
    """A fresh account with three jobs `echo "1"`, `echo "2"`, `echo "3"` (named foo, bar,
    foo), on the trusting gateway's fake-executor server (these tests run no container)."""
    trusting = trustings.kind(fake=True)
    with httpx.Client(base_url=trusting.url, auth=("lister", "key"), timeout=30) as client:
        jids = submit(
            client, quick('echo "1"', name="foo"), quick('echo "2"', name="bar"), quick('echo "3"', name="foo")
        )
        yield client, jids


def test_listing_returns_all_of_the_accounts_jobs_in_submission_order(fresh: tuple[httpx.Client, list[int]]) -> None:
    client, jids = fresh
    jobs = client.get("/v1/job").json()["jobs"]
    assert [job["cmd"] for job in jobs] == ['echo "1"', 'echo "2"', 'echo "3"']
    assert [job["jid"] for job in jobs] == jids
    for job in jobs:
        datetime.strptime(job["created_at"], "%Y-%m-%d %H:%M:%S.%f")


def test_filters_by_jid_name_and_status(fresh: tuple[httpx.Client, list[int]]) -> None:
    client, (one, two, three) = fresh
    assert listed(client, f"jid={two}") == [two]
    assert listed(client, f"jid={three}&jid={one}&jid=999999999") == [one, three]
    assert listed(client, "name=foo") == [one, three]
    assert listed(client, "name=foo&name=bar") == [one, two, three]
    assert listed(client, "name=nothing") == []
    assert listed(client, "name=") == []
    assert listed(client, "status=no-such-status") == []
    statuses = {job["status"] for job in client.get("/v1/job").json()["jobs"]}
    query = "&".join(f"status={s}" for s in statuses)
    assert listed(client, query) == [one, two, three]


def test_field_and_unknown_parameters_are_ignored(fresh: tuple[httpx.Client, list[int]]) -> None:
    client, jids = fresh
    jobs = client.get(f"/v1/job?field=jid&field=status&colour=red&jid={jids[0]}").json()["jobs"]
    assert jobs[0]["cmd"] == 'echo "1"'  # a full document, not only the requested fields


def test_before_is_exclusive_after_inclusive_and_both_apply(fresh: tuple[httpx.Client, list[int]]) -> None:
    """DECISION: `before` and `after` together both apply (Go dropped `before` without jids)."""
    client, (one, two, three) = fresh
    assert listed(client, f"before={two}") == [one]
    assert listed(client, f"after={two}") == [two, three]
    assert listed(client, f"after={one}&before={three}") == [one, two]
    assert listed(client, f"jid={three}&before={three}") == []
    assert listed(client, f"jid={one}&jid={three}&after={two}") == [three]
    assert listed(client, "before=0&after=0") == [one, two, three]
    assert listed(client, "after=18446744073709551615") == []


def test_limit_takes_the_first_value_and_get_by_name_sees_the_oldest(fresh: tuple[httpx.Client, list[int]]) -> None:
    client, (one, two, _three) = fresh
    assert listed(client, "limit=2") == [one, two]
    assert listed(client, "limit=1&limit=3") == [one]
    assert listed(client, "name=foo&limit=1") == [one]  # Go had no sort: the oldest match
    assert listed(client, "limit=&jid=" + str(two)) == [two]


def test_no_match_is_an_empty_list_never_null(http: httpx.Client) -> None:
    response = http.get("/v1/job", params={"jid": 999_999_999, "limit": 1})
    assert response.content == b'{"jobs":[]}\n'


def test_default_limit_is_1000_and_larger_limits_clamp_to_9999(as_account: Callable[[str], httpx.Client]) -> None:
    client = as_account("bulk")
    (blocker,) = submit(client, quick("true"))
    response = client.post("/v1/job", json={"jobs": [quick("true", name="n", depends_on=blocker)] * 1001})
    assert response.status_code == 200, response.text
    assert len(listed(client, "name=n")) == 1000
    assert len(listed(client, "name=n&limit=99999999")) == 1001
    assert len(listed(client, "name=n&limit=1001")) == 1001


GO_SYNTAX = 'strconv.Parse{}: parsing "{}": invalid syntax'


@pytest.mark.parametrize(
    ("query", "message", "hint"),
    [
        ("jid=abc", f"Unable to parse JID [abc]: {GO_SYNTAX.format('Uint', 'abc')}", "Please only use valid JIDs."),
        ("jid=1&jid=", f"Unable to parse JID []: {GO_SYNTAX.format('Uint', '')}", "Please only use valid JIDs."),
        ("jid=-1", f"Unable to parse JID [-1]: {GO_SYNTAX.format('Uint', '-1')}", "Please only use valid JIDs."),
        (
            "limit=abc",
            f"Unable to parse limit [abc]: {GO_SYNTAX.format('Int', 'abc')}",
            "Please specify a valid integral limit.",
        ),
        (
            "limit=99999999999999999999",
            'Unable to parse limit [99999999999999999999]: strconv.ParseInt: parsing "99999999999999999999": '
            "value out of range",
            "Please specify a valid integral limit.",
        ),
        ("limit=0", "Invalid negative or zero limit [0]", "Please specify a valid, positive integral limit."),
        ("limit=-5", "Invalid negative or zero limit [-5]", "Please specify a valid, positive integral limit."),
        (
            "before=x",
            f"Unable to parse Before bound [x]: {GO_SYNTAX.format('Uint', 'x')}",
            "Please specify a valid integral JID as the lower bound.",
        ),
        (
            "after=1.5",
            f"Unable to parse After bound [1.5]: {GO_SYNTAX.format('Uint', '1.5')}",
            "Please specify a valid integral JID as the upper bound.",
        ),
        (
            "name=%zz",
            'Unable to parse query parameters: invalid URL escape "%zz"',
            "You broke Go's URL parsing somehow! Make URLs that suck less.",
        ),
        (
            "limit=5&name=a%2",
            'Unable to parse query parameters: invalid URL escape "%2"',
            "You broke Go's URL parsing somehow! Make URLs that suck less.",
        ),
    ],
)
def test_bad_queries_are_qinval(http: httpx.Client, query: str, message: str, hint: str) -> None:
    error = assert_api_error(http.get(f"/v1/job?{query}"), 400, "QINVAL", message)
    assert error["hint"] == hint


def test_the_job_json_has_every_go_field_in_order_and_no_nulls(http: httpx.Client) -> None:
    (jid,) = submit(http, quick("exit 3", name="shape", tags={"fname": "f"}))
    job = http.get(f"/v1/job?jid={jid}").json()["jobs"][0]
    present = [key for key in GO_FIELD_ORDER if key in job]
    assert list(job) == present
    assert set(GO_FIELD_ORDER) - set(job) <= {"started_at", "finished_at"}
    assert None not in job.values()
    assert job["tags"] == {"fname": "f"} and job["env"] == {} and job["collected"] == {}
    assert job["vol"] == [] and job["stdin"] == ""
    assert STAMP.match(job["created_at"])
    for key in ("multicore", "max_runtime", "runtime", "queue_delay", "overhead_delay", "jid"):
        assert type(job[key]) is int, key


def test_a_stdin_over_64_kib_is_not_echoed_since_multyvac_never_reads_it(http: httpx.Client) -> None:
    small, large = b"s" * (64 << 10), b"L" * ((64 << 10) + 1)
    jids = submit(http, *(quick("cat", stdin=base64.b64encode(data).decode()) for data in (small, large)))
    jobs = http.get("/v1/job", params={"jid": jids}).json()["jobs"]
    assert [base64.b64decode(job["stdin"]) for job in jobs] == [small, b""]
