"""Jobs run end to end through the gateway, checked over plain HTTP (spec 3.5, 3.7, 7.9)."""

from __future__ import annotations

import base64
import re
from datetime import datetime

import httpx
import pytest

from tests.gateway.support import job_payload, submit, wait_status

pytestmark = pytest.mark.docker

FINISHED = {"done", "error", "killed", "stalled"}


def run(http: httpx.Client, cmd: str, **fields: object) -> dict[str, object]:
    (jid,) = submit(http, job_payload(cmd, **fields))
    return wait_status(http, jid, FINISHED)


def test_echo_success_is_done_with_stdout_as_the_result(http: httpx.Client) -> None:
    job = run(http, 'echo "success"')
    assert job["status"] == "done"
    assert job["result"] == base64.b64encode(b"success\n").decode() == "c3VjY2Vzcwo="
    assert job["stdout"] == "success\n" and job["stderr"] == ""
    assert job["return_code"] == 0


def test_stdin_is_piped_to_the_command(http: httpx.Client) -> None:
    job = run(http, "cat", stdin=base64.b64encode(b"success").decode())
    assert base64.b64decode(str(job["result"])) == b"success"


def test_a_file_result_source_reads_that_file(http: httpx.Client) -> None:
    job = run(http, 'echo "success" > /tmp/out', result_source="file:/tmp/out")
    assert base64.b64decode(str(job["result"])) == b"success\n"
    assert job["stdout"] == ""


def test_a_non_zero_exit_is_error_with_an_empty_result(http: httpx.Client) -> None:
    """DECISION: return_code carries the exit code once known (Go: always "")."""
    job = run(http, "echo oops >&2; exit 3")
    assert job["status"] == "error"
    assert job["result"] == ""
    assert job["return_code"] == 3
    assert job["stderr"] == "oops\n"


def test_finished_jobs_have_go_timestamps_and_nanosecond_durations(http: httpx.Client) -> None:
    job = run(http, "sleep 0.3")
    stamps = [
        datetime.strptime(str(job[key]), "%Y-%m-%d %H:%M:%S.%f") for key in ("created_at", "started_at", "finished_at")
    ]
    assert stamps == sorted(stamps)
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", str(job[k])) for k in ("created_at", "finished_at")
    )
    runtime = job["runtime"]
    assert isinstance(runtime, int) and 300_000_000 <= runtime < 30_000_000_000
    assert isinstance(job["queue_delay"], int) and isinstance(job["overhead_delay"], int)


def test_the_jobs_env_reaches_the_command(http: httpx.Client) -> None:
    job = run(http, 'echo "$GREETING"', env={"GREETING": "hello"})
    assert job["stdout"] == "hello\n"
