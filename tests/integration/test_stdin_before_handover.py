"""Stdin sent in the moment between the dispatcher's claim and the executor taking the
run over reaches the job: the job is PROCESSING and runs here, but the Docker executor
has no run for it yet. It answered "closed", and an attach that sent stdin right after
submitting failed with "its stdin is closed" (seen once in CI, on the docs' attach
example). Driven on the real engine: `HeldExecutor` is a `DockerExecutor` whose runs wait
for `go` before they start, so the input lands exactly in that moment."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.executors.base import Limits, RunObserver
from cloudpipe_server.executors.docker import DockerConfig, DockerExecutor
from cloudpipe_server.jobs.attach import Watch
from cloudpipe_server.jobs.dispatcher import Dispatcher, DispatcherConfig
from cloudpipe_server.jobs.events import JobEvents
from cloudpipe_server.jobs.output import OutputHub
from cloudpipe_server.jobs.service import JobService
from cloudpipe_server.models import Job, JobSpec, JobStatus, Outcome
from cloudpipe_server.store.sqlite import SqliteJobStore
from cloudpipe_server.store.sqlite.database import SqliteDatabase
from tests.support import OWNER_LABEL, SESSION_PREFIX, remove_labelled_containers

pytestmark = pytest.mark.docker

ALICE = Principal("alice")
IMAGE = "cloudpipe/runner-python3:latest"


def now() -> datetime:
    return datetime.now(UTC)


class HeldExecutor(DockerExecutor):
    """Each run is handed over only once `go` is set (`claimed` tells it was asked)."""

    def __init__(self, config: DockerConfig) -> None:
        super().__init__(config, now)
        self.claimed = asyncio.Event()
        self.go = asyncio.Event()

    async def run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        self.claimed.set()
        await self.go.wait()
        return await super().run(job, image, limits, observer)


@pytest.fixture
async def plant(tmp_path: Path, docker_engine: docker.DockerClient) -> AsyncIterator[tuple[JobService, HeldExecutor]]:
    owner = f"{SESSION_PREFIX}held-{secrets.token_hex(3)}"
    store = SqliteJobStore(SqliteDatabase(tmp_path / "jobs.db"))
    await store.initialize()
    executor = HeldExecutor(DockerConfig(owner=owner, cluster=f"held-{secrets.token_hex(4)}"))
    events, hub = JobEvents(), OutputHub()
    config = DispatcherConfig(owner, 2, 0.05, 10.0, 3, IMAGE, 1.0, 256 << 20, 64, 120.0)
    dispatcher = Dispatcher(store, executor, events, hub, config, now)
    service = JobService(store, dispatcher, events, now, 0.05, watch=Watch(store, dispatcher, events, hub, 0.05))
    dispatcher.start()
    try:
        yield service, executor
    finally:
        executor.go.set()
        await dispatcher.stop(5)  # leaves a running job's container for a restart to adopt
        await executor.close()
        await store.close()
        remove_labelled_containers(docker_engine, f"{OWNER_LABEL}={owner}")


async def test_stdin_sent_before_the_executor_has_the_run_is_delivered(
    plant: tuple[JobService, HeldExecutor],
) -> None:
    service, executor = plant
    [job_id] = await service.submit(ALICE, [JobSpec(cmd="tr a-z A-Z", interactive=True)])
    await asyncio.wait_for(executor.claimed.wait(), 30)
    assert (await service.get(ALICE, job_id)).status is JobStatus.PROCESSING
    # the input waits for the container instead of being refused
    written = asyncio.ensure_future(service.write_stdin(ALICE, job_id, b"shout\n"))
    await asyncio.sleep(0.3)
    assert not written.done(), "stdin was answered before the job's container ran"
    executor.go.set()
    await asyncio.wait_for(written, 60)
    await asyncio.wait_for(service.close_stdin(ALICE, job_id), 30)
    deadline = time.monotonic() + 60
    while not (job := await service.get(ALICE, job_id)).status.terminal:
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status.value}"
        await asyncio.sleep(0.05)
    assert (job.status, job.stdout) == (JobStatus.DONE, b"SHOUT\n")
