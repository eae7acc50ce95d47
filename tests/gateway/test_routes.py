"""Routing, methods, auth discovery and authentication (spec 2.1, 2.3, 2.4.1, 7.2, 7.4)."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import MAX_BODY, Stack
from tests.gateway.support import assert_api_error, start_gateway

GO_404 = b"404 page not found\n"
TEXT = "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1",
        "/v1/",
        "/v1/job/",
        "/v1/jobs",
        "/v1/job/kill/",
        "/v1/job/1",
        "/v1/volumes",
        "/v1/volume/a/b/c",
        "/v1/layer",
        "/v1/keys",
        "/v1/key/admin/activate",
        "/v1/cluster",
        "/v1/invoice/2015-04-10",
        "/v1/report/client_log/",
        "/v2/job",
        "/v1/nonexistent",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_unknown_paths_get_gos_plain_text_404(anon: httpx.Client, path: str, method: str) -> None:
    response = anon.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == TEXT
    assert response.content == GO_404


def test_the_404_is_not_json_so_multyvac_reports_could_not_parse_body(http: httpx.Client) -> None:
    response = http.get("/v1/layer", params={"name": "some-layer"})
    with pytest.raises(ValueError):
        response.json()


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/v1//job", "/v1/job"),
        ("/v1/job/../job", "/v1/job"),
        ("/v1/./job?jid=1", "/v1/job?jid=1"),
        ("/v1//%E2%82%AC", "/v1/%E2%82%AC"),  # escaped again: a header carries no `€`
        ("/v1//a%20b;c=d", "/v1/a%20b;c=d"),
    ],
)
def test_unclean_paths_are_redirected_like_gos_servemux(stack: Stack, path: str, location: str) -> None:
    # http.client sends the path as written (httpx would remove the dot segments itself)
    connection = HTTPConnection(stack.url.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 301
        assert response.getheader("location") == location
        assert response.read() == f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_job_rejects_other_methods_before_authenticating(anon: httpx.Client, method: str) -> None:
    response = anon.request(method, "/v1/job")
    if method == "HEAD":
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/json"
        return
    error = assert_api_error(response, 405, "MINVAL", "Method not supported")
    assert error["hint"] == "Use GET or POST against this endpoint."


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_auth_service_reports_the_null_service_to_anyone(anon: httpx.Client, method: str) -> None:
    response = anon.request(method, "/v1/auth_service")
    assert response.status_code == 200
    assert response.headers["content-type"] == TEXT
    assert response.content == b'{"address":"","style":"null"}\n'


def test_auth_service_echoes_a_configured_address_and_style(stack: Stack, tmp_path: Path) -> None:
    gateway = start_gateway(
        stack.server.address, tmp_path, "--auth-address", "https://somewhere.com/", "--auth-style", "cheese"
    )
    try:
        response = httpx.get(f"{gateway.url}/v1/auth_service")
        assert response.content == b'{"address":"https://somewhere.com/","style":"cheese"}\n'
    finally:
        assert gateway.stop() == 0, gateway.log


ENDPOINTS = [("GET", "/v1/job"), ("POST", "/v1/job"), ("POST", "/v1/job/kill"), ("POST", "/v1/job/kill_all")]
ENDPOINTS += [("GET", "/v1/job/queue_stats")]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_missing_credentials_are_anone(anon: httpx.Client, method: str, path: str) -> None:
    response = anon.request(method, path, content=b'{"jobs":[{"cmd":"id"}]}')
    error = assert_api_error(response, 401, "ANONE", "You must authenticate.")
    assert "set_key" in error["hint"]
    assert "www-authenticate" not in response.headers


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "basic " + base64.b64encode(b"admin:key").decode(),
        "Basic",
        "Basic !!!not-base64!!!",
        _basic(b"no-colon-here"),
    ],
)
def test_malformed_basic_headers_are_anone(anon: httpx.Client, header: str) -> None:
    response = anon.get("/v1/job", headers={"Authorization": header})
    assert_api_error(response, 401, "ANONE", "You must authenticate.")


def test_the_admin_credentials_authenticate(http: httpx.Client) -> None:
    response = http.get("/v1/job", params={"limit": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_an_unknown_account_is_afail(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/v1/job", auth=("wrong", "1234512345"))
    error = assert_api_error(response, 401, "AFAIL", "Unable to authenticate account [wrong]")
    assert error["hint"] == "Double-check the account name and API key you're providing to multyvac.config.set_key()."


def test_the_admin_name_with_a_wrong_key_is_afail(stack: Stack) -> None:
    response = httpx.post(f"{stack.url}/v1/job", auth=("admin", "12345"), json={"jobs": []})
    assert_api_error(response, 401, "AFAIL", "Unable to authenticate account [admin]")


def test_an_empty_account_name_is_afail_even_with_the_right_key(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/v1/job", auth=("", stack.key))
    assert_api_error(response, 401, "AFAIL", "Unable to authenticate account []")


def test_credentials_that_cannot_travel_as_grpc_metadata_are_afail(stack: Stack) -> None:
    header = _basic("admin:ключ".encode())
    response = httpx.get(f"{stack.url}/v1/job", headers={"Authorization": header})
    assert_api_error(response, 401, "AFAIL", "Unable to authenticate account [admin]")


def test_bad_credentials_win_over_bad_input_as_in_go(stack: Stack) -> None:
    """Go authenticated before parsing anything: wrong credentials plus a broken body is AFAIL."""
    auth = ("admin", "wrong-key")
    assert_api_error(httpx.post(f"{stack.url}/v1/job", auth=auth, content=b"{"), 401, "AFAIL")
    assert_api_error(httpx.get(f"{stack.url}/v1/job?limit=0", auth=auth), 401, "AFAIL")
    assert_api_error(httpx.post(f"{stack.url}/v1/job/kill", auth=auth), 401, "AFAIL")


def test_a_submit_with_bad_credentials_is_refused_before_its_body_is_read(stack: Stack) -> None:
    """Only the headers and a few bytes of a large body arrive, and the AFAIL comes anyway:
    an unauthenticated client costs the gateway no buffering and no parsing."""
    host, port = stack.url.removeprefix("http://").split(":")
    credentials = base64.b64encode(b"admin:wrong-key").decode()
    head = (
        f"POST /v1/job HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {credentials}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY // 2}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b'{"jobs":[{"cmd":"')
        answer = HTTPResponse(sock)
        answer.begin()
        assert answer.status == 401
        assert json.loads(answer.read())["error"]["code"] == "AFAIL"


def test_a_client_gone_mid_body_is_no_error(stack: Stack, tmp_path: Path) -> None:
    gateway = start_gateway(stack.server.address, tmp_path)
    try:
        host, port = gateway.url.removeprefix("http://").split(":")
        credentials = base64.b64encode(f"admin:{stack.key}".encode()).decode()
        head = f"POST /v1/job HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {credentials}\r\n"
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + b'{"jobs":[')
            time.sleep(0.5)  # the credentials are checked, the gateway waits for the rest
        deadline = time.monotonic() + 10
        while "went away" not in gateway.log and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "went away" in gateway.log
        assert "Traceback" not in gateway.log and "failed" not in gateway.log
    finally:
        assert gateway.stop() == 0, gateway.log


def test_a_trusted_non_admin_account_lists_its_empty_jobs(as_account: Callable[[str], httpx.Client]) -> None:
    response = as_account("nonadmin").get("/v1/job")
    assert response.status_code == 200
    assert response.content == b'{"jobs":[]}\n'


def test_no_server_header_is_sent(anon: httpx.Client) -> None:
    assert "server" not in anon.get("/v1/auth_service").headers
