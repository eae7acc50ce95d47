"""What the gateway adds for the UI: static files under /ui/ with a strict CSP, and
the /ui/api/... answers; the multyvac routes and Go's 404s stay as they were."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.gateway.conftest import Stack
from tests.gateway.support import assert_api_error, job_payload, submit, wait_status


def test_the_ui_is_served_under_ui_with_a_strict_content_security_policy(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/ui/", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<form id="login"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(f"{stack.url}/ui/common.js", timeout=10)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


def test_ui_without_slash_redirects_and_the_root_stays_gos_404(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/ui", timeout=10)
    assert response.status_code == 301
    assert response.headers["location"] == "/ui/"
    root = httpx.get(f"{stack.url}/", timeout=10)
    assert (root.status_code, root.content) == (404, b"404 page not found\n")


def test_files_outside_the_ui_folder_are_not_served(stack: Stack) -> None:
    for path in ("/ui/missing.html", "/ui/..%2fapp.py", "/ui/%2e%2e/app.py"):
        assert httpx.get(f"{stack.url}{path}", timeout=10).status_code == 404


def test_account_answer_checks_the_credentials(stack: Stack, http: httpx.Client) -> None:
    response = http.get("/ui/api/account")
    assert response.status_code == 200
    assert response.json() == {"account": "admin", "server": stack.server.address}
    assert_api_error(httpx.get(f"{stack.url}/ui/api/account", timeout=10), 401, "ANONE")
    wrong = httpx.get(f"{stack.url}/ui/api/account", auth=("admin", "wrong"), timeout=10)
    assert_api_error(wrong, 401, "AFAIL", "Unable to authenticate account [admin]")
    assert_api_error(http.post("/ui/api/account"), 405, "MINVAL")


@pytest.mark.docker
def test_job_answer_is_the_v1_job_plus_image_reason_and_attempts(http: httpx.Client) -> None:
    (jid,) = submit(http, job_payload("echo out; exit 3", name="failing"))
    wait_status(http, jid, {"error"})
    (v1_job,) = http.get("/v1/job", params={"jid": jid}).json()["jobs"]
    response = http.get("/ui/api/job", params={"jid": jid})
    assert response.status_code == 200
    job = response.json()
    assert {key: job[key] for key in v1_job} == v1_job
    assert job["image"] == "cloudpipe/runner-py2:latest"
    assert job["return_code"] == 3
    assert job["reason"]
    assert job["attempts"] >= 1


@pytest.mark.docker
def test_job_answer_shows_the_output_of_a_running_job(http: httpx.Client) -> None:
    (jid,) = submit(http, job_payload("echo started; sleep 60"))
    wait_status(http, jid, {"processing"})
    deadline = time.monotonic() + 20
    while (job := http.get("/ui/api/job", params={"jid": jid}).json())["stdout"] != "started\n":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "processing"
    http.post("/v1/job/kill", data={"jid": str(jid)})


def test_job_answer_errors_use_the_go_envelope(stack: Stack, http: httpx.Client) -> None:
    assert_api_error(http.get("/ui/api/job", params={"jid": 999_999}), 404, "JNF")
    assert_api_error(http.get("/ui/api/job", params={"jid": "x"}), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/job"), 400, "QINVAL")
    assert_api_error(httpx.get(f"{stack.url}/ui/api/job?jid=1", timeout=10), 401, "ANONE")
    wrong = httpx.get(f"{stack.url}/ui/api/job?jid=x", auth=("admin", "wrong"), timeout=10)
    assert_api_error(wrong, 401, "AFAIL")  # bad credentials beat bad input, as on /v1
