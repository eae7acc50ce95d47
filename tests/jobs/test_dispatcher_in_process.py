"""The dispatcher, the jobs service and watches in one process, on a real SQLite store,
with the fake executor (a double: cloudpipe_server/executors/fake.py; no Docker engine).
The same behaviours run on the real engine in tests/integration (marked `docker`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import StoreUnavailable
from cloudpipe_server.executors.fake import FakeExecutor
from cloudpipe_server.jobs.attach import Watch
from cloudpipe_server.jobs.dispatcher import Dispatcher, DispatcherConfig
from cloudpipe_server.jobs.events import JobEvents
from cloudpipe_server.jobs.output import OutputHub
from cloudpipe_server.jobs.service import JobService
from cloudpipe_server.models import Job, JobSpec, JobStatus, Stream
from cloudpipe_server.store.sqlite import SqliteJobStore
from cloudpipe_server.store.sqlite.database import SqliteDatabase

OWNER = "in-process"
ALICE = Principal("alice")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Plant:
    store: SqliteJobStore
    executor: FakeExecutor
    dispatcher: Dispatcher
    service: JobService

    async def job(self, job_id: int) -> Job:
        return await self.store.get(job_id)

    async def until(self, job_id: int, *statuses: JobStatus, timeout: float = 10) -> Job:
        deadline = time.monotonic() + timeout
        while (job := await self.job(job_id)).status not in statuses:
            assert time.monotonic() < deadline, f"job {job_id} is {job.status.value}, never {statuses}"
            await asyncio.sleep(0.02)
        return job


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


@pytest.fixture
async def build(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Plant]]]:
    """`await build(lease_seconds=..., wrap=..., prepare=...)`: a started dispatcher and
    service; `wrap` wraps the store they see, `prepare` sees the executor before the start."""
    stops: list[Callable[[], Awaitable[None]]] = []
    store = SqliteJobStore(SqliteDatabase(tmp_path / "jobs.db"))
    await store.initialize()

    async def make(
        *,
        lease_seconds: float = 3.0,
        wrap: Callable[[SqliteJobStore], Any] = lambda s: s,
        prepare: Callable[[FakeExecutor], object] = lambda e: None,
    ) -> Plant:
        executor = FakeExecutor(now, owner=OWNER)
        prepare(executor)
        events, hub = JobEvents(), OutputHub()
        seen = wrap(store)
        config = DispatcherConfig(OWNER, 2, 0.05, lease_seconds, 3, "image", 1.0, 1 << 30, 64, 3600.0)
        dispatcher = Dispatcher(seen, executor, events, hub, config, now)
        watch = Watch(seen, dispatcher, events, hub, 0.05)
        service = JobService(seen, dispatcher, events, now, 0.05, watch=watch)
        dispatcher.start()

        async def stop() -> None:
            await dispatcher.stop(0.5)
            await executor.close()

        stops.append(stop)
        return Plant(store, executor, dispatcher, service)

    yield make
    for stop in reversed(stops):
        await stop()
    await store.close()


async def submit(plant: Plant, cmd: str, **spec: Any) -> int:
    [job_id] = await plant.service.submit(ALICE, [JobSpec(cmd=cmd, **spec)])
    return job_id


async def test_a_claimed_job_runs_and_its_outcome_is_recorded(build: Callable[..., Awaitable[Plant]]) -> None:
    plant = await build()
    job_id = await submit(plant, "echo hi; echo oops >&2")
    job = await plant.until(job_id, JobStatus.DONE)
    assert (job.stdout, job.stderr, job.return_code, job.attempts) == (b"hi\n", b"oops\n", 0, 1)
    assert plant.executor.started == [job_id]
    failed = await plant.until(await submit(plant, "exit 3"), JobStatus.ERROR)
    assert (failed.return_code, failed.reason) == (3, "exited with code 3")


async def test_heartbeats_keep_a_job_running_longer_than_its_lease(build: Callable[..., Awaitable[Plant]]) -> None:
    plant = await build(lease_seconds=0.6)
    job_id = await submit(plant, "sleep 1.5; echo done")
    job = await plant.until(job_id, JobStatus.DONE, JobStatus.STALLED)
    assert (job.status, job.stdout, job.attempts) == (JobStatus.DONE, b"done\n", 1)


async def test_a_lost_lease_stops_the_run_and_its_outcome_is_dropped(build: Callable[..., Awaitable[Plant]]) -> None:
    plant = await build(lease_seconds=0.6)
    job_id = await submit(plant, "sleep 30")
    await plant.until(job_id, JobStatus.PROCESSING)
    # another replica's reaper finds the lease expired (its clock is an hour ahead)
    [reaped] = await plant.store.reap_expired(now() + timedelta(hours=1), max_attempts=3)
    assert (reaped.id, reaped.status) == (job_id, JobStatus.STALLED)
    await until(lambda: asyncio.sleep(0, job_id in plant.executor.killed))
    await until(lambda: asyncio.sleep(0, not plant.dispatcher.runs_here(job_id)))
    assert (await plant.job(job_id)).status is JobStatus.STALLED


class FlakyFinish:
    """The store, except that `finish` fails `failures` times first (a store outage)."""

    def __init__(self, store: SqliteJobStore, failures: int) -> None:
        self._store = store
        self.failures = failures
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def finish(self, *args: Any, **kwargs: Any) -> bool:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the store is down (test double)")
        return await self._store.finish(*args, **kwargs)


async def test_the_outcome_is_recorded_through_store_outages(build: Callable[..., Awaitable[Plant]]) -> None:
    flaky: list[FlakyFinish] = []
    plant = await build(wrap=lambda store: flaky.append(FlakyFinish(store, 2)) or flaky[0])
    job = await plant.until(await submit(plant, "echo kept"), JobStatus.DONE)
    assert (job.stdout, flaky[0].calls) == (b"kept\n", 3)


async def test_the_sweep_removes_containers_whose_job_no_longer_runs(build: Callable[..., Awaitable[Plant]]) -> None:
    plant = await build(lease_seconds=0.3)
    running = await submit(plant, "sleep 30")
    await plant.until(running, JobStatus.PROCESSING)
    finished = await plant.until(await submit(plant, "true"), JobStatus.DONE)
    orphans = {
        plant.executor.plant_container(4242, "a-dead-server"),
        plant.executor.plant_container(finished.id, OWNER),
    }

    async def swept() -> bool:
        return not orphans & {c.container_id for c in await plant.executor.list_managed()}

    await until(swept)
    assert [c.job_id for c in await plant.executor.list_managed()] == [running]  # the live run's stays


async def test_a_restarted_server_re_adopts_its_jobs(build: Callable[..., Awaitable[Plant]], tmp_path: Path) -> None:
    store = SqliteJobStore(SqliteDatabase(tmp_path / "jobs.db"))
    await store.initialize()
    [job_id] = await store.submit("alice", [JobSpec(cmd="sleep 30")], now())
    await store.claim(OWNER, now(), timedelta(seconds=30), 1)  # then this server died
    await store.close()

    # its container is still there (it finished while no server ran)
    plant = await build(prepare=lambda executor: executor.plant_container(job_id, OWNER))
    job = await plant.until(job_id, JobStatus.DONE, JobStatus.STALLED)
    assert (job.status, job.attempts) == (JobStatus.DONE, 1)
    assert plant.executor.started == []  # collected, not run again


async def test_a_watch_follows_output_status_and_the_end(build: Callable[..., Awaitable[Plant]]) -> None:
    plant = await build()
    job_id = await submit(plant, "echo a; sleep 0.3; echo b")
    text, statuses, ends = b"", [], []
    async for event in plant.service.attach(ALICE, job_id, {Stream.STDOUT: 0, Stream.STDERR: 0}):
        if event.chunk is not None:
            text += event.chunk.data
        if event.status is not None:
            statuses.append(event.status.status)
        if event.exit is not None:
            ends.append(event.exit.status)
    assert text == b"a\nb\n"
    assert statuses[-1] is JobStatus.DONE and ends == [JobStatus.DONE]
    rest = [
        e.chunk.data async for e in plant.service.attach(ALICE, job_id, {Stream.STDOUT: 2, Stream.STDERR: 0}) if e.chunk
    ]
    assert rest == [b"b\n"]  # a client reconnecting with its offsets gets only the rest


async def test_stdin_typed_into_an_interactive_job_reaches_it(build: Callable[..., Awaitable[Plant]]) -> None:
    plant = await build()
    job_id = await submit(plant, "cat", stdin=b"first ", interactive=True)
    await plant.until(job_id, JobStatus.PROCESSING)
    await plant.service.write_stdin(ALICE, job_id, b"typed")
    await plant.service.close_stdin(ALICE, job_id)
    job = await plant.until(job_id, JobStatus.DONE)
    assert job.stdout == b"first typed"


class LateHeartbeat:
    """The store, except that a lease extension naming `job_id` waits until that job's
    outcome is stored first (the job ends while the heartbeat's extension is under way)."""

    def __init__(self, store: SqliteJobStore) -> None:
        self._store = store
        self.job_id = 0
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def extend_leases(self, owner: str, job_ids: Any, until: datetime, **kwargs: Any) -> set[int]:
        if self.job_id in job_ids:
            deadline = time.monotonic() + 10
            while not (await self._store.get(self.job_id, with_output=False)).status.terminal:
                assert time.monotonic() < deadline, "the job never ended"
                await asyncio.sleep(0.01)
            self.raced = True
        return await self._store.extend_leases(owner, job_ids, until, **kwargs)


async def test_a_job_that_ends_during_a_lease_extension_is_not_taken_for_lost(
    build: Callable[..., Awaitable[Plant]], caplog: pytest.LogCaptureFixture
) -> None:
    late: list[LateHeartbeat] = []
    plant = await build(lease_seconds=0.6, wrap=lambda store: late.append(LateHeartbeat(store)) or late[0])
    late[0].job_id = job_id = await submit(plant, "sleep 0.3; echo done")
    job = await plant.until(job_id, JobStatus.DONE)
    await until(lambda: asyncio.sleep(0, late[0].raced))
    await asyncio.sleep(0.5)  # the next sweeps
    assert (job.stdout, plant.executor.killed) == (b"done\n", [])
    assert not [r for r in caplog.records if "lease lost" in r.getMessage()]


async def test_watch_many_reports_jobs_without_their_output(build: Callable[..., Awaitable[Plant]]) -> None:
    plant = await build()
    job_id = await submit(plant, "echo printed")
    assert (await plant.until(job_id, JobStatus.DONE)).stdout == b"printed\n"
    [job] = [job async for job in plant.service.watch_many(ALICE, [job_id])]
    assert (job.id, job.status, job.return_code, job.stdout) == (job_id, JobStatus.DONE, 0, b"")
