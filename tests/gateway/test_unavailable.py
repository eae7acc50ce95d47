"""When the gRPC server cannot answer: the spec's retryable codes, promptly (spec 2.2, addendum 1)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.gateway.support import GatewayProcess, assert_api_error, job_payload

AUTH = ("admin", "any-key")
FORM = {"content-type": "application/x-www-form-urlencoded"}


def call(gateway: GatewayProcess, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}{path}", auth=AUTH, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_submit_is_jqueue_503_with_retry(dead_gateway: GatewayProcess) -> None:
    response = call(dead_gateway, "POST", "/v1/job", json={"jobs": [job_payload()]})
    error = assert_api_error(response, 503, "JQUEUE", "Unable to enqueue your job.", retry=True)
    assert "hint" not in error


def test_list_is_jlist_503_with_retry(dead_gateway: GatewayProcess) -> None:
    error = assert_api_error(call(dead_gateway, "GET", "/v1/job?jid=1"), 503, "JLIST", retry=True)
    assert error["message"].startswith("Unable to list jobs: ")
    assert error["hint"] == "This is most likely a database problem."


def test_queue_stats_is_jlist_503_with_retry(dead_gateway: GatewayProcess) -> None:
    assert_api_error(call(dead_gateway, "GET", "/v1/job/queue_stats"), 503, "JLIST", retry=True)


def test_kill_is_jlist_500_with_retry(dead_gateway: GatewayProcess) -> None:
    response = call(dead_gateway, "POST", "/v1/job/kill", content=b"jid=1", headers=FORM)
    error = assert_api_error(response, 500, "JLIST", "Unable to list jobs.", retry=True)
    assert error["hint"] == "This is probably a storage error on our end."


def test_kill_all_is_jupd_500_with_retry(dead_gateway: GatewayProcess) -> None:
    error = assert_api_error(call(dead_gateway, "POST", "/v1/job/kill_all"), 500, "JUPD", retry=True)
    assert error["message"].startswith("Unable to request a job kill: ")


def test_submit_checks_the_credentials_before_the_body_so_any_body_is_jqueue(dead_gateway: GatewayProcess) -> None:
    """Nothing was enqueued, so multyvac may retry."""
    assert_api_error(call(dead_gateway, "POST", "/v1/job", content=b"{"), 503, "JQUEUE", retry=True)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/v1/job?limit=0", b""), ("POST", "/v1/job/kill", b"jid=x")],
)
def test_bad_input_is_aconn_when_the_credentials_cannot_be_checked(
    dead_gateway: GatewayProcess, method: str, path: str, body: bytes
) -> None:
    """Go checked credentials first; when they cannot be checked the answer is ACONN (retry)."""
    response = call(dead_gateway, method, path, content=body, headers=FORM)
    error = assert_api_error(response, 500, "ACONN", retry=True)
    assert error["message"].startswith("Unable to connect to authentication service: ")


def test_what_needs_no_server_still_works(dead_gateway: GatewayProcess) -> None:
    assert httpx.get(f"{dead_gateway.url}/v1/auth_service").status_code == 200
    assert_api_error(httpx.get(f"{dead_gateway.url}/v1/job"), 401, "ANONE")
    assert_api_error(httpx.delete(f"{dead_gateway.url}/v1/job"), 405, "MINVAL")
    assert httpx.get(f"{dead_gateway.url}/v1/layer").status_code == 404


def test_a_server_that_never_answers_costs_one_deadline_not_a_hang(silent_gateway: GatewayProcess) -> None:
    started = time.monotonic()
    response = call(silent_gateway, "POST", "/v1/job", json={"jobs": [job_payload()]})
    assert_api_error(response, 503, "JQUEUE", retry=True)
    assert time.monotonic() - started < 5
    assert_api_error(call(silent_gateway, "GET", "/v1/job"), 503, "JLIST", retry=True)
