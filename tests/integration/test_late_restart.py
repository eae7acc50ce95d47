"""A server killed with SIGKILL and restarted with the same identity only after its
leases expired takes its own jobs back: it re-adopts their containers and records
their outcomes, instead of reaping them STALLED (or re-running them) first."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from cloudpipe_sdk import JobStatus
from tests.support import free_port, start_server

pytestmark = pytest.mark.docker

LEASE_SECONDS = 3


def test_a_restart_after_the_lease_expired_re_adopts_finished_jobs(tmp_path: Path, docker_engine: object) -> None:
    port = free_port()  # the same port: the same identity (CLOUDPIPE_SERVER_ID)
    env = {
        "CLOUDPIPE_LEASE_SECONDS": str(LEASE_SECONDS),
        "CLOUDPIPE_WARM_POOL": "false",  # warm jobs cannot be re-adopted
        "CLOUDPIPE_MAX_CONCURRENT_JOBS": "6",
    }
    server = start_server(tmp_path, env=env, port=port)
    with server.client() as client:
        plain = [client.shell(f"echo up; sleep 2; echo plain {i}") for i in range(3)]
        again = [client.shell(f"echo up; sleep 2; echo again {i}", restartable=True) for i in range(3)]
        jobs = plain + again

        def all_running() -> bool:
            snapshots = [client.get(j.id).snapshot for j in jobs]
            return all(s.status is JobStatus.PROCESSING and s.stdout.startswith(b"up") for s in snapshots)

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all_running():
            time.sleep(0.05)
        assert all_running()
    server.stop(signal.SIGKILL)
    time.sleep(LEASE_SECONDS * 3)  # every job's container has exited, every lease has expired
    restarted = start_server(tmp_path, env={**env, "CLOUDPIPE_ADMIN_KEY": server.api_key}, port=port)
    try:
        with restarted.client() as client:
            for i, job in enumerate(plain):
                assert client.get(job.id).result(timeout=60) == f"up\nplain {i}\n".encode()
            for i, job in enumerate(again):
                assert client.get(job.id).result(timeout=60) == f"up\nagain {i}\n".encode()
                assert client.get(job.id).snapshot.attempts == 1  # adopted, not run again
    finally:
        restarted.stop()
    assert "runner lost" not in restarted.log


OUTPUT_CAP = 64 << 10


def test_a_re_adopted_job_keeps_its_output_only_up_to_the_cap(tmp_path: Path, docker_engine: object) -> None:
    """Output read back from the engine's log on re-adoption is bounded like streamed
    output: it read the log whole (a job printing 314 MB stored 314 MB)."""
    port = free_port()
    env = {
        "CLOUDPIPE_LEASE_SECONDS": str(LEASE_SECONDS),
        "CLOUDPIPE_WARM_POOL": "false",
        "CLOUDPIPE_OUTPUT_CAP_BYTES": str(OUTPUT_CAP),
    }
    server = start_server(tmp_path, env=env, port=port)
    with server.client() as client:
        # 800 kB in lines: over the cap, and within what the engine's rotated log keeps (3 x 1 MiB
        # of JSON lines, about 2.5 times the text)
        job = client.shell("echo up; sleep 2; yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 800000")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not client.get(job.id).snapshot.stdout.startswith(b"up"):
            time.sleep(0.05)
        assert client.get(job.id).snapshot.stdout == b"up\n", "killed before the big output"
    server.stop(signal.SIGKILL)
    time.sleep(4)  # the container has printed everything and exited meanwhile
    restarted = start_server(tmp_path, env={**env, "CLOUDPIPE_ADMIN_KEY": server.api_key}, port=port)
    try:
        with restarted.client() as client:
            assert client.get(job.id).wait(timeout=60) is JobStatus.DONE
            stored = client.get(job.id).snapshot.stdout
    finally:
        restarted.stop()
    assert "re-adopting container" in restarted.log
    note = b"\n[cloudpipe: output truncated at %d bytes; " % OUTPUT_CAP
    assert len(stored) < OUTPUT_CAP + 200, len(stored)
    assert stored.startswith(b"up\n0123456789") and note in stored, stored[-200:]
    assert stored.endswith(b" more bytes dropped]\n")
