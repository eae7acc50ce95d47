"""Per-account quotas: queued jobs (checked at Submit) and running jobs (the claim
skips accounts at their cap). Accounts come from metadata on an anonymous server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.support import PerExecutor, ServerProcess, start_server

MAX_QUEUED = 2


def stub(server: ServerProcess) -> Iterator[pb_grpc.JobServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]


def as_account(name: str) -> tuple[tuple[str, str], ...]:
    return (("x-cloudpipe-account", name),)


def submit(jobs: pb_grpc.JobServiceStub, account: str, *cmds: str) -> list[int]:
    request = pb.SubmitRequest(jobs=[pb.JobSpec(cmd=cmd) for cmd in cmds])
    return list(jobs.Submit(request, metadata=as_account(account), timeout=20).ids)


def status(jobs: pb_grpc.JobServiceStub, account: str, job_id: int) -> int:
    return jobs.Get(pb.GetJobRequest(id=job_id), metadata=as_account(account), timeout=20).status  # type: ignore[no-any-return]


def wait_for(jobs: pb_grpc.JobServiceStub, account: str, job_id: int, wanted: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while status(jobs, account, job_id) != wanted:
        assert time.monotonic() < deadline, f"job {job_id} never reached {wanted}"
        time.sleep(0.1)


@contextmanager
def _quota_server(tmp_path_factory: pytest.TempPathFactory, fake: bool) -> Iterator[ServerProcess]:
    env = {
        "CLOUDPIPE_ALLOW_ANONYMOUS": "true",
        "CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT": str(MAX_QUEUED),
        "CLOUDPIPE_MAX_CONCURRENT_JOBS": "1",
    }
    server = start_server(tmp_path_factory.mktemp("quota-server"), env=env, fake=fake)
    yield server
    for jobs in stub(server):
        for account in ("q-a", "q-b", "q-c"):
            jobs.KillAll(pb.KillAllRequest(), metadata=as_account(account), timeout=20)
    assert server.stop() == 0, server.log


@pytest.fixture(scope="module")
def quota_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerExecutor[ServerProcess]]:
    pool = PerExecutor(lambda fake: _quota_server(tmp_path_factory, fake))
    yield pool
    pool.close()


@pytest.fixture
def jobs(quota_servers: PerExecutor[ServerProcess], request: pytest.FixtureRequest) -> Iterator[pb_grpc.JobServiceStub]:
    """A stub of the quota server: on the Docker engine for `docker`-marked tests, else
    with the fake executor."""
    yield from stub(quota_servers.get(request))


def test_a_submit_over_the_queue_quota_is_resource_exhausted_and_queues_nothing(
    jobs: pb_grpc.JobServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        submit(jobs, "q-c", *["true"] * (MAX_QUEUED + 1))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit is 2" in (caught.value.details() or "")
    assert "CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT" in (caught.value.details() or "")
    counts = jobs.QueueStats(pb.QueueStatsRequest(), metadata=as_account("q-c"), timeout=20).counts
    assert sum(counts.values()) == 0


@pytest.mark.docker
def test_the_queue_quota_counts_each_accounts_waiting_jobs(jobs: pb_grpc.JobServiceStub, docker_engine: object) -> None:
    running = submit(jobs, "q-a", "sleep 60")[0]
    wait_for(jobs, "q-a", running, pb.JOB_STATUS_PROCESSING)  # the server's only slot is taken
    submit(jobs, "q-a", "true", "true")  # two queued: at the quota
    with pytest.raises(grpc.RpcError) as caught:
        submit(jobs, "q-a", "true")
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "account q-a has 2 queued job(s)" in (caught.value.details() or "")
    assert len(submit(jobs, "q-b", "true", "true")) == 2  # another account has its own quota
    jobs.KillAll(pb.KillAllRequest(), metadata=as_account("q-a"), timeout=20)
    assert len(submit(jobs, "q-a", "true")) == 1  # room again once the queue drained


@pytest.mark.docker
def test_the_running_cap_keeps_an_accounts_extra_jobs_queued_while_others_run(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: object
) -> None:
    env = {
        "CLOUDPIPE_ALLOW_ANONYMOUS": "true",
        "CLOUDPIPE_MAX_RUNNING_PER_ACCOUNT": "1",
        "CLOUDPIPE_MAX_CONCURRENT_JOBS": "3",
    }
    server = start_server(tmp_path_factory.mktemp("running-cap"), env=env)
    try:
        for jobs in stub(server):
            first, second = submit(jobs, "r-a", "sleep 60", "sleep 60")
            [other] = submit(jobs, "r-b", "sleep 60")
            wait_for(jobs, "r-b", other, pb.JOB_STATUS_PROCESSING)  # claimed past r-a's queued job
            deadline = time.monotonic() + 1.5  # several claim rounds (poll 0.2 s) with a free slot
            while time.monotonic() < deadline:
                listed = jobs.List(pb.ListJobsRequest(ids=[first, second]), metadata=as_account("r-a"), timeout=20)
                running = [job.id for job in listed.jobs if job.status == pb.JOB_STATUS_PROCESSING]
                assert len(running) <= 1, "r-a runs more jobs than its cap"
                time.sleep(0.1)
            assert running, "r-a's first job should run"
            jobs.Kill(pb.KillJobRequest(id=running[0]), metadata=as_account("r-a"), timeout=20)
            wait_for(jobs, "r-a", second, pb.JOB_STATUS_PROCESSING)
            for account in ("r-a", "r-b"):
                jobs.KillAll(pb.KillAllRequest(), metadata=as_account(account), timeout=20)
    finally:
        assert server.stop() == 0, server.log
