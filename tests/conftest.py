"""Shared fixtures: a real Cloudpipe server process on a loopback port, a real Docker
engine, and a check that no job container outlives the test session."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from cloudpipe_sdk import Client

ROOT = Path(__file__).resolve().parent.parent
JOB_LABEL = "org.cloudpipe.job"
RUNNER_IMAGES = ("cloudpipe/runner-python3:latest",)


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
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(data_dir: Path, *, env: dict[str, str] | None = None, port: int | None = None) -> ServerProcess:
    """Start a server and wait until its health check answers SERVING."""
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
        **(env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cloudpipe_server"], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    server = ServerProcess(f"127.0.0.1:{port}", key, data_dir, process, log_path)
    wait_serving(server)
    return server


def wait_serving(server: ServerProcess, timeout: float = 30) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(server.address) as channel:
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


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[object]:
    """The real Docker engine; the test command starts dockerd and builds the images."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        pytest.fail(f"these tests need a running Docker engine (run scripts/test.sh): {exc}")
    for image in RUNNER_IMAGES:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"runner image {image} missing: run python runner_images/build.py")
    yield client
    client.close()


@pytest.fixture(scope="session", autouse=True)
def no_leftover_containers() -> Iterator[None]:
    """After the session, no container made for a job may remain."""
    yield
    try:
        import docker

        client = docker.from_env()
    except Exception:  # noqa: BLE001 - no engine: nothing could have been left
        return
    deadline = time.monotonic() + 20
    while True:
        left = client.containers.list(all=True, filters={"label": JOB_LABEL})
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for container in left:
        container.remove(force=True)
    assert not left, f"job containers left behind: {[c.name for c in left]}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, docker_engine: object) -> Iterator[ServerProcess]:
    """One server for the session (SQLite store, local Docker)."""
    process = start_server(tmp_path_factory.mktemp("server"))
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with server.client() as c:
        yield c
