"""`Delete` (`cloudpipe rm`) removes the caller's finished jobs with their output, all or
none, and refuses running ones; retention empties old output and deletes old jobs in the
server's periodic sweep. Real server processes over gRPC, on the fake executor (a double
that runs no container: these are rules of the control plane)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk import Client, InvalidRequest, JobStatus, NotFound
from cloudpipe_server.jobs.retention import Retention, RetentionConfig
from cloudpipe_server.models import JobQuery, JobSpec, Outcome
from cloudpipe_server.models import JobStatus as StoredStatus
from cloudpipe_server.store import open_stores
from cloudpipe_server.store.base import Purged
from tests.cli.support import cloudpipe
from tests.support import ServerProcess, start_server

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[pb_grpc.JobServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]


def test_a_finished_job_is_deleted_and_a_running_one_refused(client: Client, stub: pb_grpc.JobServiceStub) -> None:
    done = client.shell("echo to be deleted")
    assert done.result(timeout=30) == b"to be deleted\n"
    running = client.shell("sleep 60")
    deadline = time.monotonic() + 30
    while client.get(running.id).status is not JobStatus.PROCESSING and time.monotonic() < deadline:
        time.sleep(0.1)
    md = (("authorization", f"Bearer {client.config.api_key}"),)
    with pytest.raises(grpc.RpcError) as refused:
        stub.Delete(pb.DeleteJobsRequest(ids=[done.id, running.id]), timeout=10, metadata=md)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert f"job {running.id} is processing" in (refused.value.details() or "")
    assert client.get(done.id).status is JobStatus.DONE  # all or none
    with pytest.raises(grpc.RpcError) as missing:
        stub.Delete(pb.DeleteJobsRequest(ids=[done.id, 1 << 40]), timeout=10, metadata=md)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as empty:
        stub.Delete(pb.DeleteJobsRequest(), timeout=10, metadata=md)
    assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    assert client.delete(done.id, done.id) == [done.id]
    with pytest.raises(NotFound):
        client.get(done.id)
    assert done.id not in [job.id for job in client.list()]
    client.kill(running.id)
    with pytest.raises(InvalidRequest, match="kill it first"):
        while client.get(running.id).status is JobStatus.PROCESSING:  # until the kill lands
            client.delete(running.id)
            time.sleep(0.05)
        raise InvalidRequest("kill it first (the kill had landed)")
    assert client.delete(running.id) == [running.id]  # killed: finished, so it can go


def test_cloudpipe_rm_deletes_finished_jobs(server: ServerProcess, client: Client) -> None:
    jobs = [client.shell(f"echo {n}") for n in range(2)]
    for job in jobs:
        job.result(timeout=30)
    removed = cloudpipe(server, "rm", *(str(job.id) for job in jobs))
    assert removed.exit_code == 0, removed.stderr
    assert removed.stdout == f"deleted 2 job(s): {jobs[0].id} {jobs[1].id}\n"
    again = cloudpipe(server, "rm", str(jobs[0].id))
    assert again.exit_code == 3 and "not found" in again.stderr  # 3: not found
    running = client.shell("sleep 60")
    refused = cloudpipe(server, "rm", str(running.id))
    client.kill(running.id)
    assert refused.exit_code == 2 and "kill it first" in refused.stderr, refused.stderr


def test_the_server_sweeps_old_output_then_old_jobs(tmp_path: Path) -> None:
    env = {
        "CLOUDPIPE_RETENTION_OUTPUT_DAYS": str(3 / 86400),  # three seconds
        "CLOUDPIPE_RETENTION_JOB_DAYS": str(8 / 86400),  # eight seconds
        "CLOUDPIPE_RETENTION_INTERVAL": "0.3",
        "CLOUDPIPE_RETENTION_BATCH": "2",
    }
    server = start_server(tmp_path, env=env, fake=True)
    try:
        with Client(server.address, api_key=server.api_key) as client:
            jobs = [client.shell(f"echo kept for a moment {n}") for n in range(5)]
            assert [job.result(timeout=30) for job in jobs] == [f"kept for a moment {n}\n".encode() for n in range(5)]
            deadline = time.monotonic() + 20
            while any(client.get(job.id).stdout for job in jobs) and time.monotonic() < deadline:
                time.sleep(0.2)
            emptied = [client.get(job.id) for job in jobs]
            assert [(j.status, j.stdout, j.return_code) for j in emptied] == [(JobStatus.DONE, "", 0)] * 5
            while client.list() and time.monotonic() < deadline + 10:
                time.sleep(0.2)
            assert client.list() == []
            with pytest.raises(NotFound):
                client.get(jobs[0].id)
    finally:
        assert server.stop() == 0, server.log
    assert "retention:" in server.log


def test_the_server_keeps_each_accounts_output_within_its_byte_budget(tmp_path: Path) -> None:
    line = "x" * 35  # stdout 36 bytes, and the same as the result: 72 bytes a job
    env = {"CLOUDPIPE_RETENTION_ACCOUNT_BYTES": "200", "CLOUDPIPE_RETENTION_INTERVAL": "0.3"}
    server = start_server(tmp_path, env=env, fake=True)
    try:
        with Client(server.address, api_key=server.api_key) as client:
            jobs = []
            for _ in range(5):  # one after the other: finish times in submission order
                jobs.append(client.shell(f"echo {line}"))
                assert jobs[-1].result(timeout=30) == f"{line}\n".encode()
            deadline = time.monotonic() + 20
            while client.get(jobs[2].id).stdout and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)  # a few more sweeps: nothing more goes
            kept = [client.get(job.id).stdout for job in jobs]
            assert kept == ["", "", "", f"{line}\n", f"{line}\n"], "the oldest emptied, the newest 144 bytes kept"
            assert all(client.get(job.id).status is JobStatus.DONE for job in jobs)
    finally:
        assert server.stop() == 0, server.log


def test_one_sweep_goes_on_batch_after_batch(tmp_path: Path) -> None:
    async def run() -> Purged:
        stores = open_stores(f"sqlite:///{tmp_path / 'cloudpipe.db'}")
        await stores.initialize()
        try:
            ids = await stores.jobs.submit("alice", [JobSpec(cmd="true")] * 7, T0)
            await stores.jobs.claim("d1", T0, timedelta(seconds=30), 7)
            for job_id in ids:
                await stores.jobs.finish(job_id, "d1", Outcome(StoredStatus.DONE, T0, stdout=b"x"))
            retention = Retention(stores.jobs, RetentionConfig(output_days=1, job_days=2, batch=3), lambda: T0)
            assert await retention.sweep() == Purged()  # nothing old enough yet
            later = Retention(
                stores.jobs, RetentionConfig(output_days=1, job_days=2, batch=3), lambda: T0 + timedelta(days=3)
            )
            swept = await later.sweep()
            assert await stores.jobs.list_jobs("alice", JobQuery()) == []
            return swept
        finally:
            await stores.close()

    assert asyncio.run(run()).jobs == 7
