"""Throughput of files into and out of a volume: VolumeService Upload and Download over
gRPC on loopback, against `docker cp` of the same file into and out of a container that
mounts an engine volume, measured in the same run.

    python -m bench.volume_transfer [--mib 256] [--rounds 3]

Each round writes a new random file; both paths end with the file whole in a volume
(Upload renames it into place; `docker cp` writes it directly). Prints MiB/s per path
and the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_proto.v1 import volumes_pb2_grpc as pb_grpc
from tests.support import start_server

CHUNK = 1 << 20
IMAGE = "cloudpipe/runner-python3:latest"


def chunks_of(path: Path, volume: str) -> Iterator[pb.UploadRequest]:
    yield pb.UploadRequest(start=pb.UploadStart(volume=volume, path="blob", size_bytes=path.stat().st_size))
    with path.open("rb") as source:
        while data := source.read(CHUNK):
            yield pb.UploadRequest(data=data)


def cloudpipe_round(
    stub: pb_grpc.VolumeServiceStub, md: tuple[tuple[str, str], ...], path: Path
) -> tuple[float, float]:
    volume = f"bench-{uuid.uuid4().hex[:8]}"
    stub.Create(pb.CreateVolumeRequest(name=volume), metadata=md, timeout=60)
    try:
        started = time.perf_counter()
        stub.Upload(chunks_of(path, volume), metadata=md, timeout=600)
        up = time.perf_counter() - started
        digest = hashlib.sha256()
        started = time.perf_counter()
        for chunk in stub.Download(pb.DownloadRequest(volume=volume, path="blob"), metadata=md, timeout=600):
            digest.update(chunk.data)
        down = time.perf_counter() - started
        assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
        return up, down
    finally:
        stub.Delete(pb.DeleteVolumeRequest(name=volume), metadata=md, timeout=60)


def docker_round(path: Path, folder: Path) -> tuple[float, float]:
    volume = f"cloudpipe-bench-{uuid.uuid4().hex[:8]}"
    container = subprocess.run(
        ["docker", "create", "-v", f"{volume}:/v", "--network", "none", IMAGE, "true"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        started = time.perf_counter()
        subprocess.run(["docker", "cp", str(path), f"{container}:/v/blob"], check=True, capture_output=True)
        up = time.perf_counter() - started
        target = folder / "back"
        started = time.perf_counter()
        subprocess.run(["docker", "cp", f"{container}:/v/blob", str(target)], check=True, capture_output=True)
        down = time.perf_counter() - started
        assert target.stat().st_size == path.stat().st_size
        target.unlink()
        return up, down
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True)
        subprocess.run(["docker", "volume", "rm", "-f", volume], check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ours_up, ours_down, docker_up, docker_down = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {"CLOUDPIPE_LOG_LEVEL": "WARNING", "CLOUDPIPE_ALLOW_ANONYMOUS": "true"}
        server = start_server(folder / "server", env=env)
        md = (("x-cloudpipe-account", f"bench-{uuid.uuid4().hex[:8]}"),)
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = pb_grpc.VolumeServiceStub(channel)  # type: ignore[no-untyped-call]
                for _ in range(args.rounds):
                    path = folder / "blob"
                    path.write_bytes(os.urandom(args.mib << 20))
                    up, down = cloudpipe_round(stub, md, path)
                    ours_up.append(up)
                    ours_down.append(down)
                    up, down = docker_round(path, folder)
                    docker_up.append(up)
                    docker_down.append(down)
        finally:
            server.stop()
    mib = args.mib
    print(f"{mib} MiB file, median of {args.rounds} round(s), MiB/s (higher is better)")
    print(f"{'':10} {'Cloudpipe':>10} {'docker cp':>10} {'ratio':>7}")
    for name, ours, theirs in (("upload", ours_up, docker_up), ("download", ours_down, docker_down)):
        ours_rate, their_rate = mib / statistics.median(ours), mib / statistics.median(theirs)
        print(f"{name:10} {ours_rate:10.1f} {their_rate:10.1f} {ours_rate / their_rate:6.2f}x")


if __name__ == "__main__":
    main()
