"""The server as a process: first start, shutdown, and crashes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudpipe_sdk import AuthError, Client, JobStatus
from tests.support import start_server

pytestmark = pytest.mark.docker


def test_first_start_writes_an_admin_key_file_and_never_logs_it(tmp_path: Path, docker_engine: object) -> None:
    server = start_server(tmp_path / "data", env={"CLOUDPIPE_ADMIN_KEY": ""})
    try:
        key_file = tmp_path / "data" / "admin.key"
        key = key_file.read_text().strip()
        assert len(key) >= 32
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        with Client(server.address, api_key=key) as client:
            assert client.queue_stats()["queued"] == 0
        with Client(server.address, api_key="wrong") as client, pytest.raises(AuthError):
            client.queue_stats()
    finally:
        assert server.stop() == 0
    assert key not in server.log and str(key_file) in server.log


def test_running_without_auth_is_loud(tmp_path: Path, docker_engine: object) -> None:
    server = start_server(tmp_path, env={"CLOUDPIPE_ALLOW_ANONYMOUS": "true"})
    try:
        with Client(server.address, api_key="") as client:
            assert client.shell("echo open").result(timeout=60) == b"open\n"
    finally:
        server.stop()
    assert "AUTHENTICATION IS DISABLED" in server.log


def test_sigterm_lets_a_running_job_finish(tmp_path: Path, docker_engine: object) -> None:
    server = start_server(tmp_path)
    with server.client() as client:
        job = client.shell("sleep 2; echo finished")
        deadline = time.monotonic() + 30
        while job.status is not JobStatus.PROCESSING and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.stop(signal.SIGTERM) == 0
    restarted = start_server(tmp_path, env={"CLOUDPIPE_ADMIN_KEY": server.api_key})
    try:
        with restarted.client() as client:
            assert client.get(job.id).result(timeout=10) == b"finished\n"
    finally:
        restarted.stop()


def test_kill_9_mid_job_leaves_no_job_processing_forever(tmp_path: Path, docker_engine: object) -> None:
    server = start_server(tmp_path)
    with server.client() as client:
        plain = client.shell("sleep 3; echo plain")
        again = client.shell("sleep 3; echo again", restartable=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(j.status is JobStatus.PROCESSING for j in (plain, again)):
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    restarted = start_server(tmp_path, env={"CLOUDPIPE_ADMIN_KEY": server.api_key})
    try:
        with restarted.client() as client:
            assert client.get(again.id).result(timeout=60) == b"again\n"
            stalled = client.get(plain.id)
            assert stalled.wait(timeout=60) is JobStatus.STALLED
            assert "lost" in stalled.reason
            assert client.get(again.id).snapshot.attempts == 2
    finally:
        restarted.stop()


def test_json_logs_are_one_object_a_line_and_keep_secrets_out(tmp_path: Path, docker_engine: object) -> None:
    server = start_server(tmp_path, env={"CLOUDPIPE_LOG_FORMAT": "json"})
    try:
        with server.client() as client:
            assert client.shell("echo logged").result(timeout=60) == b"logged\n"
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in server.log.splitlines() if line.strip()]
    assert records, "the server logged nothing"
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    assert any(record["logger"].startswith("cloudpipe_server") for record in records)
    assert server.api_key not in server.log


def test_an_unknown_log_format_is_refused_before_serving(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cloudpipe_server"],
        env={**os.environ, "CLOUDPIPE_DATA_DIR": str(tmp_path), "CLOUDPIPE_LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "CLOUDPIPE_LOG_FORMAT" in done.stderr and "text, json" in done.stderr
