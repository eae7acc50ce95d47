"""`--log-format json` on the real programs: every line they print is one JSON object,
lines about a job carry its `job_id` and `account`, request lines carry the caller's
account, and no secret value, API key or password is ever in them."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudpipe_auth import pki
from cloudpipe_sdk import Client, JobStatus
from tests.auth.support import new_account, start_auth_service
from tests.gateway.support import start_gateway
from tests.support import start_server

pytestmark = pytest.mark.docker

_ABOUT_A_JOB = re.compile(r"^job (\d+)\b")


def records_of(log: str, program: str) -> list[dict[str, Any]]:
    """Every line of `log` as a JSON object (a line that is not one fails the test)."""
    records = []
    for number, line in enumerate(log.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{program} line {number} is not JSON: {line!r}")
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= record.keys(), line
        records.append(record)
    assert records, f"{program} logged nothing"
    return records


def about(records: list[dict[str, Any]], job_id: int) -> list[dict[str, Any]]:
    """The records whose message is about this job (`job 12: ...`)."""
    found = []
    for record in records:
        match = _ABOUT_A_JOB.match(record["message"])
        if match and int(match.group(1)) == job_id:
            found.append(record)
    return found


def test_json_logs_name_the_job_and_account_and_never_a_secret(tmp_path: Path, docker_engine: object) -> None:
    pki.init(tmp_path / "pki")
    auth = start_auth_service(tmp_path / "pki", tmp_path / "auth", args=["--log-format", "json"])
    try:
        account, password, api_key = new_account(auth, "logs")
        with auth.external_client() as web:  # a login of the web UI's API, with the password
            login = web.post("/v2/login", json={"accountName": account, "password": password})
            assert login.status_code == 200, login.text
            session = login.json()["token"]
        server = start_server(
            tmp_path / "server",
            env=auth.server_env(CLOUDPIPE_AUTH_CACHE_TTL="0"),
            args=["--log-format", "json", "--log-level", "DEBUG"],
        )
        gateway = None
        try:
            value = "v4lue-" + secrets.token_urlsafe(18)
            with Client(server.address, api_key=api_key, account=account) as client:
                client.secrets.set("LOG_TEST_TOKEN", value)
                warm = client.shell('test "$LOG_TEST_TOKEN" && echo warm', secrets=["LOG_TEST_TOKEN"])
                fresh = client.shell(
                    'printf %s "$LOG_TEST_TOKEN" > /dev/null && echo fresh',
                    secrets=["LOG_TEST_TOKEN"],
                    fresh_container=True,
                )
                assert warm.result(timeout=120) == b"warm\n"
                assert fresh.result(timeout=120) == b"fresh\n"
                killed = client.shell("sleep 60")
                deadline = time.monotonic() + 60
                while killed.status is not JobStatus.PROCESSING and time.monotonic() < deadline:
                    time.sleep(0.1)
                killed.kill()
                assert killed.wait(timeout=60) is JobStatus.KILLED
                client.secrets.delete("LOG_TEST_TOKEN")
            gateway = start_gateway(server.address, tmp_path, "--log-format", "json", "--access-log")
            stats = httpx.get(f"{gateway.url}/v1/job/queue_stats", auth=(account, api_key), timeout=30)
            assert stats.status_code == 200, stats.text
        finally:
            if gateway is not None:
                assert gateway.stop() == 0, gateway.log
            assert server.stop() == 0, server.log
    finally:
        assert auth.stop() == 0, auth.log

    served = records_of(server.log, "the server")
    for job in (warm, fresh, killed):
        lines = about(served, job.id)
        assert len(lines) >= 3, (job.id, lines)  # queued, processing, ..., how it ended
        for record in lines:
            assert record.get("job_id") == job.id and record.get("account") == account, record
    messages = {record["message"] for record in about(served, killed.id)}
    assert any("kill requested" in message for message in messages), messages
    assert any("stopping" in message for message in messages), messages  # the executor's line
    secret_set = [r for r in served if "secret LOG_TEST_TOKEN set" in r["message"]]
    assert secret_set and all(r["account"] == account and "job_id" not in r for r in secret_set)

    proxied = records_of(gateway.log, "the gateway")
    access = [r for r in proxied if r["logger"] == "uvicorn.access"]
    assert access, "uvicorn's access log did not go through the JSON formatter"
    assert any(r.get("account") == account for r in access), access
    assert not any("color_message" in r for r in proxied)  # uvicorn's copy with terminal colours

    signed_in = records_of(auth.log, "the auth service")
    about_account = [r for r in signed_in if r["message"].startswith(f"account {account}")]
    assert any("logged in" in r["message"] for r in about_account), about_account
    assert all(r["account"] == account for r in about_account), about_account

    for program, log in (("server", server.log), ("gateway", gateway.log), ("auth service", auth.log)):
        assert value not in log, f"the secret's value is in the {program}'s log"
        assert api_key not in log, f"the API key is in the {program}'s log"
        assert password not in log, f"the password is in the {program}'s log"
        assert session not in log, f"the session token is in the {program}'s log"
        assert server.api_key not in log, f"the admin key is in the {program}'s log"
