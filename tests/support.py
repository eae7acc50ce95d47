"""Helpers shared by the test packages: start a real `cloudpipe-server` process on a
loopback port and wait until it serves."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import pytest

from cloudpipe_sdk import Client

ROOT = Path(__file__).resolve().parent.parent
JOB_LABEL = "org.cloudpipe.job"
OWNER_LABEL = "org.cloudpipe.owner"
# Servers started by this test session carry this prefix in their identity (and so in
# their containers' owner label): the leftover check looks only at our own containers.
SESSION_PREFIX = f"test-{secrets.token_hex(4)}-"
RUNNER_IMAGES = ("cloudpipe/runner-python3:latest",)


T = TypeVar("T")


class PerExecutor(Generic[T]):
    """A session resource (a server, a server and its gateway) made at most twice: with
    the fake executor for tests without the `docker` marker, with the real Docker
    engine for tests with it, each on first use and closed when the session ends.
    `make(fake)` is a context manager yielding the resource and cleaning it up."""

    def __init__(self, make: Callable[[bool], AbstractContextManager[T]]) -> None:
        self._make = make
        self._made: dict[bool, T] = {}
        self._stack = ExitStack()

    def kind(self, fake: bool) -> T:
        if fake not in self._made:
            self._made[fake] = self._stack.enter_context(self._make(fake))
        return self._made[fake]

    def get(self, request: pytest.FixtureRequest) -> T:
        """The one for the requesting test: fake unless it is marked `docker`."""
        return self.kind(request.node.get_closest_marker("docker") is None)

    def close(self) -> None:
        self._stack.close()


def stop_process(process: subprocess.Popen[bytes], sig: int = 15, timeout: float = 30) -> int:
    """Send `sig` (SIGTERM by default), wait up to `timeout`, then SIGKILL; the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A `cloudpipe-server` subprocess; `log` holds what it printed so far."""

    address: str
    api_key: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **options: object) -> Client:
        return Client(self.address, api_key=self.api_key, **options)  # type: ignore[arg-type]

    def stop(self, sig: int = 15, timeout: float = 30) -> int:
        return stop_process(self.process, sig, timeout)


def start_server(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    tls_ca: Path | None = None,
    fake: bool = False,
    args: Sequence[str] = (),
) -> ServerProcess:
    """Start a server and wait until its health check answers SERVING (over TLS
    verified with `tls_ca` when the server serves TLS). `fake=True`: with the fake
    executor (tests/fake_server.py, a double that needs no Docker engine). `args`:
    command-line flags (`--log-format json`)."""
    port = port or free_port()
    key = (env or {}).get("CLOUDPIPE_ADMIN_KEY") or secrets.token_urlsafe(16)
    environment = {
        **os.environ,
        "CLOUDPIPE_LISTEN": f"127.0.0.1:{port}",
        "CLOUDPIPE_DATA_DIR": str(data_dir),
        "CLOUDPIPE_ADMIN_KEY": key,
        "CLOUDPIPE_POLL_INTERVAL": "0.2",
        "CLOUDPIPE_LEASE_SECONDS": "6",
        "CLOUDPIPE_LOG_LEVEL": "DEBUG",
        "CLOUDPIPE_SERVER_ID": f"{SESSION_PREFIX}{port}",
        **(env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_server" if fake else "cloudpipe_server", *args],
            cwd=ROOT if fake else None,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(f"127.0.0.1:{port}", key, data_dir, process, log_path)
    wait_serving(server, tls_ca=tls_ca)
    return server


def wait_serving(server: ServerProcess, timeout: float = 30, tls_ca: Path | None = None) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    if tls_ca is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
        opened = grpc.secure_channel(server.address, credentials)
    else:
        opened = grpc.insecure_channel(server.address)
    with opened as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log}")
            try:
                response = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"server not serving after {timeout} s:\n{server.log}")


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status a gRPC call fails with (a streaming answer is read to its end first)."""
    with pytest.raises(grpc.RpcError) as raised:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            list(result)
    return raised.value.code()  # type: ignore[no-any-return, attr-defined]


def remove_labelled_containers(client: Any, label: str, timeout: float = 20) -> None:
    """Force-remove every container with `label` (KEY=VALUE) and wait until none is left.
    One the engine is already removing (a job's container removed as its run ended) is
    let go: the engine answers 409 "removal ... already in progress" and finishes it."""
    import docker.errors

    for container in client.api.containers(all=True, filters={"label": label}):
        try:
            client.api.remove_container(container["Id"], force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
    deadline = time.monotonic() + timeout
    while client.api.containers(all=True, filters={"label": label}):
        assert time.monotonic() < deadline, f"containers labelled {label} still there after {timeout} s"
        time.sleep(0.1)
