"""Crash safety at speed: a server killed with SIGKILL in the middle of a map of 2,000
function jobs on warm containers loses none of them, and its warm containers go."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import cloudpickle
import docker
import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk import _serialize as wire
from tests.integration.test_warm_pool import Listed, pool_containers
from tests.support import ServerProcess, start_server

pytestmark = pytest.mark.docker

JOBS = 2000
FINISHED = (pb.JOB_STATUS_DONE, pb.JOB_STATUS_ERROR, pb.JOB_STATUS_KILLED, pb.JOB_STATUS_STALLED)


def square(x: int) -> int:
    return x * x


cloudpickle.register_pickle_by_value(sys.modules[__name__])


def spec(x: int) -> pb.JobSpec:
    return pb.JobSpec(
        cmd=wire.RUNNER_COMMAND,
        stdin=cloudpickle.dumps((square, (x,), {})),
        result_source=f"file:{wire.RESULT_PATH}",
        result_type=pb.RESULT_TYPE_PICKLE,
        serializer="cloudpickle",
        client_python=f"{sys.version_info.major}.{sys.version_info.minor}",
        restartable=x % 2 == 0,  # the even ones are requeued when their runner is lost
    )


def stub_of(server: ServerProcess) -> tuple[grpc.Channel, pb_grpc.JobServiceStub, list[tuple[str, str]]]:
    channel = grpc.insecure_channel(server.address)
    return channel, pb_grpc.JobServiceStub(channel), [("authorization", f"Bearer {server.api_key}")]  # type: ignore[no-untyped-call]


def jobs_of(server: ServerProcess, ids: list[int]) -> list[pb.Job]:
    channel, stub, metadata = stub_of(server)
    with channel:
        return list(stub.List(pb.ListJobsRequest(ids=ids, limit=len(ids)), metadata=metadata, timeout=60).jobs)


def pool_of(engine: docker.DockerClient, server: ServerProcess) -> list[Listed]:
    return [c for c in pool_containers(engine, server)]


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.2)
    assert condition(), f"not within {timeout} s: {what}"  # type: ignore[operator]


def test_kill_9_during_a_map_loses_no_job_and_reaps_the_warm_pool(
    tmp_path: Path, docker_engine: docker.DockerClient
) -> None:
    env = {"CLOUDPIPE_LEASE_SECONDS": "3", "CLOUDPIPE_WARM_POOL_PREWARM": "admin=4", "CLOUDPIPE_LOG_LEVEL": "INFO"}
    first = start_server(tmp_path, env=env)
    channel, stub, metadata = stub_of(first)
    with channel:
        ids: list[int] = []
        for start in range(0, JOBS, 500):
            batch = [spec(x) for x in range(start, start + 500)]
            ids += stub.Submit(pb.SubmitRequest(jobs=batch), metadata=metadata, timeout=60).ids

        def some_done() -> bool:
            counts = stub.QueueStats(pb.QueueStatsRequest(), metadata=metadata, timeout=10).counts
            return counts["done"] >= JOBS // 10

        wait_for(some_done, 120, "a tenth of the map done")
    assert pool_of(docker_engine, first), "the map ran in warm containers"
    first.stop(signal.SIGKILL)
    wait_for(lambda: all(c.status != "running" for c in pool_of(docker_engine, first)), 15, "dead server's pool stops")

    second = start_server(tmp_path, env={**env, "CLOUDPIPE_ADMIN_KEY": first.api_key})
    try:
        wait_for(lambda: not pool_of(docker_engine, first), 30, "the orphan sweep removes the dead server's pool")
        wait_for(lambda: all(j.status in FINISHED for j in jobs_of(second, ids)), 240, "every job finished")
        jobs = jobs_of(second, ids)
    finally:
        assert second.stop() == 0, second.log
    assert sorted(j.id for j in jobs) == sorted(ids), "no job is missing"
    by_input = dict(zip(range(JOBS), sorted(jobs, key=lambda j: j.id), strict=True))
    lost = []
    for x, job in by_input.items():
        if job.status == pb.JOB_STATUS_DONE:
            assert cloudpickle.loads(job.result)["value"] == x * x
        else:  # only a job whose runner died with the server, and it says so
            assert job.status == pb.JOB_STATUS_STALLED and x % 2 == 1 and "lost" in job.reason, (x, job)
            lost.append(x)
    requeued = [x for x, job in by_input.items() if job.attempts > 1]
    assert lost or requeued, "the kill caught jobs mid-run (requeued or stalled, visibly)"
    assert all(by_input[x].status == pb.JOB_STATUS_DONE for x in requeued)
    assert not pool_of(docker_engine, second)
