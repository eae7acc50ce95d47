"""TLS on the gRPC port (SDK and gateway as clients) and on the gateway's HTTP port,
with certificates from `cloudpipe pki init`."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudpipe_auth import pki
from cloudpipe_sdk import Client
from cloudpipe_sdk._errors import Unavailable
from tests.gateway.support import GatewayProcess
from tests.support import ROOT, ServerProcess, free_port, start_server


@pytest.fixture(scope="module")
def tls_server(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"CLOUDPIPE_TLS_CERT": str(pki_dir / "server-cert.pem"), "CLOUDPIPE_TLS_KEY": str(pki_dir / "server-key.pem")}
    server = start_server(tmp_path_factory.mktemp("tls-server"), env=env, tls_ca=pki_dir / "ca.pem", fake=True)
    yield server
    assert server.stop() == 0, server.log


def test_the_sdk_talks_tls_with_the_ca(tls_server: ServerProcess, pki_dir: Path) -> None:
    with Client(tls_server.address, api_key=tls_server.api_key, tls_ca=pki_dir / "ca.pem") as client:
        assert client.list() == []


def test_the_sdk_reads_the_ca_from_the_environment(
    tls_server: ServerProcess, pki_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDPIPE_TLS_CA", str(pki_dir / "ca.pem"))
    with Client(tls_server.address, api_key=tls_server.api_key) as client:
        assert client.queue_stats()["queued"] == 0


def test_a_plaintext_client_gets_nothing(tls_server: ServerProcess) -> None:
    with Client(tls_server.address, api_key=tls_server.api_key, retry_for=0.5) as client, pytest.raises(Unavailable):
        client.list()


def test_a_client_trusting_another_ca_gets_nothing(tls_server: ServerProcess, tmp_path: Path) -> None:
    pki.init(tmp_path)
    with (
        Client(tls_server.address, api_key=tls_server.api_key, tls_ca=tmp_path / "ca.pem", retry_for=0.5) as client,
        pytest.raises(Unavailable),
    ):
        client.list()


def start_https_gateway(server: ServerProcess, certs: Path, log_dir: Path) -> GatewayProcess:
    port = free_port()
    log_path = log_dir / f"gateway-{port}.log"
    command = [
        *(sys.executable, "-m", "http_gateway", "--listen", f"127.0.0.1:{port}", "--server", server.address),
        *("--tls-cert", str(certs / "server-cert.pem"), "--tls-key", str(certs / "server-key.pem")),
        *("--server-tls-ca", str(certs / "ca.pem")),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    gateway = GatewayProcess(f"https://127.0.0.1:{port}", process, log_path)
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, gateway.log
        try:
            httpx.get(f"{gateway.url}/v1/auth_service", verify=context, timeout=1)
            return gateway
        except httpx.TransportError:
            time.sleep(0.1)
    gateway.stop()
    raise AssertionError(f"gateway not answering:\n{gateway.log}")


def test_the_gateway_serves_https_in_front_of_a_tls_server(
    tls_server: ServerProcess, pki_dir: Path, tmp_path: Path
) -> None:
    gateway = start_https_gateway(tls_server, pki_dir, tmp_path)
    try:
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.pem"))
        response = httpx.get(f"{gateway.url}/v1/job", auth=("admin", tls_server.api_key), verify=context, timeout=30)
        assert (response.status_code, response.json()) == (200, {"jobs": []})
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{gateway.url}/v1/job", timeout=5)  # untrusted: the system CAs do not know ours
    finally:
        assert gateway.stop() == 0, gateway.log
