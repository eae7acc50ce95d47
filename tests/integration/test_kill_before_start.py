"""A kill that lands after a fresh job's container was created but before it started
acts at once: the container never starts (it was started, and ran until the next
heartbeat sent the kill again, because stopping a container that is not running yet does
nothing). Driven on the real engine through `GatedExecutor`, a `DockerExecutor` held
between the create and the start so the kill lands exactly there.

And a server killed between the create and the start leaves a container that never ran:
re-adopting it must not wait on it (the engine answers at once, exit code 0: the soak
found such jobs DONE with no output) but give the job back to the queue."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from datetime import UTC, datetime

import docker
import pytest

from cloudpipe_server.executors.base import Limits, NeverStarted, RunObserver
from cloudpipe_server.executors.docker import LABEL_CLUSTER, DockerConfig, DockerExecutor
from cloudpipe_server.models import Job, JobSpec, JobStatus, Outcome, OutputChunk
from tests.support import JOB_LABEL, OWNER_LABEL, SESSION_PREFIX

pytestmark = pytest.mark.docker

IMAGE = "cloudpipe/runner-python3:latest"
LIMITS = Limits(cpus=1.0, memory_bytes=256 << 20, pids=64, max_runtime=120.0, network=False)


class GatedExecutor(DockerExecutor):
    """Stops each run after its container was created, until `go` is set."""

    def __init__(self, config: DockerConfig) -> None:
        super().__init__(config, lambda: datetime.now(UTC))
        self.created = threading.Event()
        self.go = threading.Event()

    def _start_and_wait(self, *args: object) -> Outcome:
        self.created.set()
        assert self.go.wait(60)
        return super()._start_and_wait(*args)  # type: ignore[arg-type]


class Recorder(RunObserver):
    def __init__(self) -> None:
        self.containers: list[str] = []
        self.chunks: list[OutputChunk] = []

    def started(self, container_id: str, at: datetime) -> None:
        self.containers.append(container_id)

    def output(self, chunk: OutputChunk) -> None:
        self.chunks.append(chunk)


async def test_a_kill_between_create_and_start_keeps_the_container_from_starting(
    docker_engine: docker.DockerClient,
) -> None:
    owner = f"{SESSION_PREFIX}gated-{secrets.token_hex(3)}"
    executor = GatedExecutor(DockerConfig(owner=owner, cluster=f"gated-{secrets.token_hex(4)}"))
    job = Job(1, "alice", JobSpec(cmd="echo ran; sleep 100"), JobStatus.PROCESSING, datetime.now(UTC), attempts=1)
    observer = Recorder()
    try:
        run = asyncio.ensure_future(executor.run(job, IMAGE, LIMITS, observer))
        assert await asyncio.to_thread(executor.created.wait, 60), "the container was not created"
        assert await executor.kill(job.id)  # lands between the create and the start
        executor.go.set()
        outcome = await asyncio.wait_for(run, 30)  # not the 100 s the command would take
        assert outcome.status is JobStatus.KILLED and outcome.reason == "killed before it started"
        assert observer.containers == [] and observer.chunks == [], "the command ran"
    finally:
        executor.go.set()
        await executor.close()
        filters = {"label": [f"{JOB_LABEL}={job.id}", f"{OWNER_LABEL}={owner}"]}
        deadline = time.monotonic() + 30  # the executor removes the container in the background
        while docker_engine.api.containers(all=True, filters=filters) and time.monotonic() < deadline:
            time.sleep(0.2)
        for container in docker_engine.api.containers(all=True, filters=filters):
            with contextlib.suppress(docker.errors.APIError):
                docker_engine.api.remove_container(container["Id"], force=True)


async def test_a_container_left_created_but_never_started_is_not_re_adopted_as_done(
    docker_engine: docker.DockerClient,
) -> None:
    owner, cluster = f"{SESSION_PREFIX}created-{secrets.token_hex(3)}", f"created-{secrets.token_hex(4)}"
    job = Job(2, "alice", JobSpec(cmd="echo ran"), JobStatus.PROCESSING, datetime.now(UTC), attempts=1)
    labels = {JOB_LABEL: str(job.id), OWNER_LABEL: owner, LABEL_CLUSTER: cluster}
    left = docker_engine.api.create_container(IMAGE, ["/bin/bash", "-c", "echo ran"], labels=labels)["Id"]
    executor = DockerExecutor(DockerConfig(owner=owner, cluster=cluster), lambda: datetime.now(UTC))
    try:
        with pytest.raises(NeverStarted, match="before starting it"):
            await executor.adopt(job, LIMITS)
        assert docker_engine.api.containers(all=True, filters={"id": left}) == [], "the never-started container stayed"
        assert await executor.adopt(job, LIMITS) is None  # nothing left of the job
    finally:
        await executor.close()
        with contextlib.suppress(docker.errors.APIError):
            docker_engine.api.remove_container(left, force=True)
