"""Transfer fixtures: a real S3-compatible server (SeaweedFS), a local HTTP server,
and a Cloudpipe server on the Docker engine that may reach loopback
(`CLOUDPIPE_TRANSFER_ALLOW_PRIVATE_ADDRESSES`, as these servers are on it), with small
transfer limits; a second one keeps the default and refuses loopback."""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest

from cloudpipe_sdk import Client
from tests.support import ServerProcess, start_server
from tests.transfers.seaweed import S3Server, start_s3_server

INPUT_MAX_BYTES = 2 << 20
OUTPUT_MAX_BYTES = 2 << 20
TRANSFER_TIMEOUT = 3.0
SLOW_SECONDS = 30.0
TRANSFER_DEADLINE = 10.0  # for all of a job's inputs (and outputs) on the transfer server
TRICKLE_BYTES = 100  # /trickle sends one a second: never a read timeout, and over the deadline


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@dataclass
class HttpFiles:
    """Files served over HTTP on loopback from `root`."""

    root: Path
    url: str  # http://127.0.0.1:PORT


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the files; `/slow` answers only after SLOW_SECONDS (a source that hangs),
    `/trickle` sends TRICKLE_BYTES one a second (a source that never quite stops)."""

    def do_GET(self) -> None:
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(TRICKLE_BYTES))
            self.end_headers()
            for _ in range(TRICKLE_BYTES):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
            return
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up on /slow: the broken pipe is expected


@pytest.fixture(scope="session")
def http_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpFiles]:
    root = tmp_path_factory.mktemp("http-files")
    httpd = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield HttpFiles(root, f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def transfer_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    env = {
        "CLOUDPIPE_TRANSFER_ALLOW_PRIVATE_ADDRESSES": "true",
        "CLOUDPIPE_TRANSFER_INPUT_MAX_BYTES": str(INPUT_MAX_BYTES),
        "CLOUDPIPE_TRANSFER_OUTPUT_MAX_BYTES": str(OUTPUT_MAX_BYTES),
        "CLOUDPIPE_TRANSFER_TIMEOUT": str(TRANSFER_TIMEOUT),
        "CLOUDPIPE_TRANSFER_DEADLINE": str(TRANSFER_DEADLINE),
    }
    process = start_server(tmp_path_factory.mktemp("transfer-server"), env=env)
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture(scope="session")
def strict_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("strict-transfer-server"), env={"CLOUDPIPE_TRANSFER_TIMEOUT": "5"})
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A fresh bucket for one test."""
    name = f"test-{secrets.token_hex(5)}"
    s3_server.client().make_bucket(name)
    return name


@pytest.fixture
def client(transfer_server: ServerProcess, s3_server: S3Server) -> Iterator[Client]:
    """The admin's client, with the storage secret "S3" set to the test S3 server's credentials."""
    with transfer_server.client() as c:
        c.secrets.set("S3", s3_server.credentials())
        yield c
