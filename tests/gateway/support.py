"""Helpers of the gateway tests: start a real `python -m http_gateway` process, and
run Python 2.7 scripts with the real multyvac 0.5.0 client in a runner-py2 container."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT, free_port, stop_process

PY2_IMAGE = "cloudpipe/runner-py2:latest"
CLIENT_LABEL = "org.cloudpipe.test"
CLIENT_LABEL_VALUE = "multyvac-client"


@dataclass
class GatewayProcess:
    """A `python -m http_gateway` subprocess serving on `url`."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    server_address: str = ""  # the gRPC server it is in front of

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        return stop_process(self.process, timeout=timeout)


def start_gateway(server_address: str, log_dir: Path, *args: str) -> GatewayProcess:
    """Start a gateway for `server_address` on a free loopback port; wait until it answers."""
    port = free_port()
    log_path = log_dir / f"gateway-{port}.log"
    command = [sys.executable, "-m", "http_gateway", "--listen", f"127.0.0.1:{port}", "--server", server_address]
    with log_path.open("ab") as log:
        process = subprocess.Popen([*command, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process, log_path, server_address)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{gateway.log}")
        try:
            if httpx.get(f"{gateway.url}/v1/auth_service", timeout=1).status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    gateway.stop()
    raise RuntimeError(f"gateway not answering after 20 s:\n{gateway.log}")


PRELUDE = """\
import json, sys, time
import multyvac
multyvac.config.set_key(api_key=%(account)r, api_secret_key=%(key)r, api_url=%(url)r)

def emit(**values):
    sys.stdout.write('RESULT ' + json.dumps(values) + '\\n')
"""


def run_multyvac(docker_client: Any, url: str, key: str, script: str, timeout: float = 180) -> dict[str, Any]:
    """Run `script` under Python 2.7 with the unmodified multyvac 0.5.0 client pointed at
    `url` (host network), and return what it passed to `emit(...)`. The container is
    labelled as a test client and always removed."""
    source = PRELUDE % {"account": "admin", "key": key, "url": f"{url}/v1"} + script
    container = docker_client.containers.run(
        PY2_IMAGE,
        ["python", "-c", source],
        detach=True,
        network_mode="host",
        environment={"ON_MULTYVAC": "false"},  # the image is a job image; this client is not a job
        labels={CLIENT_LABEL: CLIENT_LABEL_VALUE},
    )
    try:
        try:
            exit_code = container.wait(timeout=timeout)["StatusCode"]
        except Exception as exc:
            raise AssertionError(f"multyvac script still running after {timeout} s") from exc
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    assert exit_code == 0, f"multyvac script failed ({exit_code}):\n{output}"
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, f"multyvac script emitted nothing:\n{output}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def assert_api_error(
    response: httpx.Response, status: int, code: str, message: str | None = None, *, retry: bool = False
) -> dict[str, Any]:
    """The Go server's `hasError` check (spec 7): status, exact Content-Type, code,
    message and retry; plus the envelope's shape (no newline, hint/retry omitted when empty)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert not response.content.endswith(b"\n")
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    if message is not None:
        assert error["message"] == message
    assert error.get("retry", False) is retry
    assert "retry" in error if retry else "retry" not in error
    assert set(error) <= {"code", "message", "hint", "retry"}
    return error


def job_payload(cmd: str = "true", **fields: Any) -> dict[str, Any]:
    """A valid job of the submit body, as multyvac's shell_submit sends it."""
    return {"cmd": cmd, "result_source": "stdout", "result_type": "binary", **fields}


def submit(client: httpx.Client, *jobs: dict[str, Any]) -> list[int]:
    response = client.post("/v1/job", json={"jobs": list(jobs)})
    assert response.status_code == 200, response.text
    jids: list[int] = response.json()["jids"]
    assert len(jids) == len(jobs)
    return jids


def get_job(client: httpx.Client, jid: int) -> dict[str, Any]:
    response = client.get("/v1/job", params={"jid": jid, "limit": 1})
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    assert [job["jid"] for job in jobs] == [jid]
    return jobs[0]


def wait_status(client: httpx.Client, jid: int, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(client, jid)
        if job["status"] in statuses or time.monotonic() > deadline:
            assert job["status"] in statuses, job
            return job
        time.sleep(0.2)
