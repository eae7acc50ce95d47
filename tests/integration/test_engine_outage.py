"""A Docker engine that is away: the server starts without it, serves reads, says so in
its health (the executor's name NOT_SERVING, the server itself SERVING), claims nothing
while it is away, gives back the jobs that could not start, keeps what a job wrote
before the engine failed under it, re-adopts the jobs that ran through the outage (or
recovers them as lost runners when their container went), and runs the queue once the
engine answers.

The outage is one server's only: it reaches the real engine through `EngineProxy`, a
socket forwarder the test stops and starts (the shared dockerd keeps running)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cloudpipe_sdk import Client, JobStatus
from cloudpipe_server.rpc.server import EXECUTOR_HEALTH_NAME
from tests.engine_proxy import EngineProxy
from tests.support import JOB_LABEL, OWNER_LABEL, SESSION_PREFIX, ServerProcess, start_server

pytestmark = pytest.mark.docker

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def engine(docker_engine: docker.DockerClient) -> Iterator[EngineProxy]:
    with EngineProxy() as proxy:
        yield proxy


def serve(tmp_path: Path, engine: EngineProxy, **env: str) -> ServerProcess:
    return start_server(
        tmp_path,
        env={
            "CLOUDPIPE_DOCKER_HOST": engine.url,
            "CLOUDPIPE_WARM_POOL": "false",  # every job in a fresh container: one path to prove
            **env,
        },
    )


def health(server: ServerProcess, name: str) -> int:
    with grpc.insecure_channel(server.address) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        return int(response.status)


def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def containers_of(docker_engine: docker.DockerClient, server: ServerProcess, job_id: int) -> list[object]:
    owner = f"{SESSION_PREFIX}{server.address.rsplit(':', 1)[1]}"  # start_server's CLOUDPIPE_SERVER_ID
    filters = {"label": [f"{JOB_LABEL}={job_id}", f"{OWNER_LABEL}={owner}"]}
    return list(docker_engine.api.containers(all=True, filters=filters))


def test_the_server_starts_without_its_engine_serves_reads_and_claims_once_it_answers(
    tmp_path: Path, engine: EngineProxy
) -> None:
    server = serve(tmp_path, engine)  # nothing answers at the engine's socket yet
    try:
        assert health(server, "") == SERVING
        assert health(server, EXECUTOR_HEALTH_NAME) == NOT_SERVING
        with server.client() as client:
            job = client.shell("echo ran")
            assert client.get(job.id).status is JobStatus.QUEUED  # reads and submits work
            assert client.queue_stats()["queued"] == 1
            time.sleep(2)
            snapshot = client.get(job.id).snapshot
            assert snapshot.status is JobStatus.QUEUED and snapshot.attempts == 0
            engine.start()
            eventually(lambda: health(server, EXECUTOR_HEALTH_NAME) == SERVING, 15, "the executor serving")
            assert client.get(job.id).result(timeout=60) == b"ran\n"
            assert client.get(job.id).snapshot.attempts == 1
    finally:
        server.stop()


def test_an_engine_outage_leaves_jobs_queued_and_gives_back_those_that_could_not_start(
    tmp_path: Path, engine: EngineProxy
) -> None:
    engine.start()
    # a long lease: the heartbeat's engine check (every lease/3) comes late, so the jobs
    # submitted right after the engine went are claimed and find it gone at their start
    server = serve(tmp_path, engine, CLOUDPIPE_LEASE_SECONDS="60", CLOUDPIPE_MAX_CONCURRENT_JOBS="4")
    try:
        eventually(lambda: health(server, EXECUTOR_HEALTH_NAME) == SERVING, 15, "the executor serving")
        with server.client() as client:
            assert client.shell("echo before").result(timeout=60) == b"before\n"
            engine.stop()
            jobs = [client.shell(f"echo during {i}") for i in range(8)]
            eventually(lambda: health(server, EXECUTOR_HEALTH_NAME) == NOT_SERVING, 15, "the executor not serving")
            time.sleep(3)  # claiming has stopped: nothing moves while the engine is away
            snapshots = [client.get(j.id).snapshot for j in jobs]
            assert [s.status for s in snapshots] == [JobStatus.QUEUED] * len(jobs), [s.reason for s in snapshots]
            assert all(s.attempts == 0 for s in snapshots), "an attempt the engine never saw is not counted"
            given_back = [s for s in snapshots if s.reason]
            assert given_back, "no claimed job met the outage at its start"
            assert all("could not start" in s.reason and "Docker engine" in s.reason for s in given_back)
            assert health(server, "") == SERVING
            engine.start()
            for i, job in enumerate(jobs):
                assert client.get(job.id).result(timeout=60) == f"during {i}\n".encode()
            assert all(client.get(j.id).snapshot.attempts == 1 for j in jobs)
    finally:
        server.stop()


def test_a_job_running_through_an_engine_outage_is_re_adopted_and_finishes_with_its_full_output(
    tmp_path: Path, engine: EngineProxy, docker_engine: docker.DockerClient
) -> None:
    engine.start()
    server = serve(tmp_path, engine)
    try:
        with server.client() as client:
            job = client.shell("echo before; echo oops >&2; sleep 6; echo after")
            eventually(lambda: client.get(job.id).snapshot.stdout == b"before\n", 60, "the first line stored")
            engine.stop()  # the engine goes under the running job; its container runs on
            eventually(lambda: health(server, EXECUTOR_HEALTH_NAME) == NOT_SERVING, 15, "the executor not serving")
            during = client.get(job.id).snapshot
            assert during.status is JobStatus.PROCESSING, during.reason
            assert during.stdout == b"before\n" and during.stderr == b"oops\n"  # kept while away
            time.sleep(8)  # the job ends on the engine while this server cannot see it
            assert client.get(job.id).status is JobStatus.PROCESSING
            engine.start()
            assert client.get(job.id).wait(timeout=60) is JobStatus.DONE
            ended = client.get(job.id).snapshot
            assert ended.stdout == b"before\nafter\n" and ended.stderr == b"oops\n", ended.reason
            assert ended.attempts == 1, "re-adopted, not run again"
            eventually(lambda: not containers_of(docker_engine, server, job.id), 60, "its container removed")
    finally:
        server.stop()


@pytest.mark.parametrize("restartable", [True, False])
def test_a_job_whose_container_went_during_the_outage_is_requeued_or_stalled(
    tmp_path: Path, engine: EngineProxy, docker_engine: docker.DockerClient, restartable: bool
) -> None:
    engine.start()
    server = serve(tmp_path, engine, CLOUDPIPE_LEASE_SECONDS="3", CLOUDPIPE_POLL_INTERVAL="0.5")
    try:
        with server.client() as client:
            marker = "first" if restartable else "only"
            job = client.shell(f"echo {marker}; sleep 20", restartable=restartable)
            eventually(lambda: client.get(job.id).snapshot.stdout == f"{marker}\n".encode(), 60, "the output")
            engine.stop()
            for container in containers_of(docker_engine, server, job.id):  # gone while away
                docker_engine.api.remove_container(container["Id"], force=True)  # type: ignore[index]
            time.sleep(2)
            assert client.get(job.id).status is JobStatus.PROCESSING  # its lease is kept meanwhile
            engine.start()
            if restartable:
                eventually(lambda: client.get(job.id).snapshot.attempts == 2, 60, "a second attempt")
                second = client.get(job.id).snapshot
                assert second.status in (JobStatus.QUEUED, JobStatus.PROCESSING), second.reason
                client.kill(job.id)
            else:
                assert client.get(job.id).wait(timeout=60) is JobStatus.STALLED
                stalled = client.get(job.id).snapshot
                assert "lost" in stalled.reason and "not restartable" in stalled.reason, stalled.reason
                assert stalled.stdout == b"only\n", "what it wrote before the outage is kept"
    finally:
        server.stop()


def test_a_missing_engine_socket_is_reported_not_fatal(tmp_path: Path, docker_engine: docker.DockerClient) -> None:
    server = start_server(tmp_path, env={"CLOUDPIPE_DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    try:
        assert health(server, EXECUTOR_HEALTH_NAME) == NOT_SERVING
        with Client(server.address, api_key=server.api_key) as client:
            job = client.shell("echo never")
            time.sleep(2)
            assert client.get(job.id).status is JobStatus.QUEUED
            client.kill(job.id)
            assert client.get(job.id).wait(timeout=10) is JobStatus.KILLED
    finally:
        assert server.stop() == 0
