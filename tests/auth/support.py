"""Helpers of the auth tests: a real `python -m cloudpipe_auth` process
with certificates from our PKI, and HTTPS clients holding (or not) a client cert."""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import ROOT, free_port, stop_process


@dataclass
class AuthProcess:
    """A running auth service: `internal` needs a client certificate, `external` not."""

    internal: str
    external: str
    pki: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def validate_base(self) -> str:
        """What CLOUDPIPE_AUTH_SERVICE is set to (the original's `https://authstore:9001/v1`)."""
        return f"{self.internal}/v1"

    def internal_client(self, cert: str | None = "cloudpipe") -> httpx.Client:
        """An HTTPS client of the internal listener presenting `<cert>-cert.pem` (or none)."""
        return httpx.Client(base_url=self.internal, verify=tls_context(self.pki, cert), timeout=10)

    def external_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.external, verify=tls_context(self.pki, None), timeout=30)

    def server_env(self, **extra: str) -> dict[str, str]:
        """Settings of a cloudpipe server that checks keys with this service."""
        return {
            "CLOUDPIPE_AUTH_SERVICE": self.validate_base,
            "CLOUDPIPE_AUTH_CA": str(self.pki / "ca.pem"),
            "CLOUDPIPE_AUTH_CERT": str(self.pki / "cloudpipe-cert.pem"),
            "CLOUDPIPE_AUTH_KEY": str(self.pki / "cloudpipe-key.pem"),
            **extra,
        }

    def stop(self, timeout: float = 20) -> int:
        return stop_process(self.process, timeout=timeout)


def tls_context(pki: Path, cert: str | None, ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca or pki / "ca.pem"))
    if cert is not None:
        context.load_cert_chain(str(pki / f"{cert}-cert.pem"), str(pki / f"{cert}-key.pem"))
    return context


def start_auth_service(
    pki: Path, data_dir: Path, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> AuthProcess:
    """Start the auth service on two free loopback ports and wait until both answer;
    `args`: command-line flags (`--log-format json`)."""
    internal_port, external_port = free_port(), free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"auth-{external_port}.log"
    environment = {
        **os.environ,
        "CLOUDPIPE_AUTH_INTERNAL_LISTEN": f"127.0.0.1:{internal_port}",
        "CLOUDPIPE_AUTH_EXTERNAL_LISTEN": f"127.0.0.1:{external_port}",
        "CLOUDPIPE_AUTH_PKI_DIR": str(pki),
        "CLOUDPIPE_AUTH_DATA_DIR": str(data_dir),
        "CLOUDPIPE_AUTH_LOG_LEVEL": "DEBUG",
        "CLOUDPIPE_AUTH_OPEN_SIGNUP": "true",  # off by default; the tests sign up freely
        **(env or {}),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cloudpipe_auth", *args],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = AuthProcess(
        f"https://127.0.0.1:{internal_port}", f"https://127.0.0.1:{external_port}", pki, process, log_path
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"auth service exited with {process.returncode}:\n{service.log}")
        try:
            with service.external_client() as ext, service.internal_client() as internal:
                if ext.get("/").status_code == 200 and internal.get("/").status_code == 200:
                    return service
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"auth service not answering after 20 s:\n{service.log}")


def new_account(service: AuthProcess, prefix: str = "user") -> tuple[str, str, str]:
    """A fresh account through the compat API: (name, password, API key)."""
    name = f"{prefix}-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    with service.external_client() as client:
        created = client.post("/v1/accounts", data={"accountName": name, "password": password})
        assert created.status_code == 201, created.text
        key = client.post("/v1/keys", data={"accountName": name, "password": password})
        assert key.status_code == 200, key.text
    return name, password, key.text
