"""`JobService.watch_many` reads, on each wake, only the jobs that changed, on a real
SQLite store with the fake executor (a double: cloudpipe_server/executors/fake.py; the
dispatcher is never started, so no job runs). Before, every wake re-read every pending
id: a watch of 10,000 jobs cost O(pending) store reads per finished job, and the
server's CPU per job grew with the size of the map."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.executors.fake import FakeExecutor
from cloudpipe_server.jobs.attach import Watch
from cloudpipe_server.jobs.dispatcher import Dispatcher, DispatcherConfig
from cloudpipe_server.jobs.events import JobEvents
from cloudpipe_server.jobs.output import OutputHub
from cloudpipe_server.jobs.service import JobService
from cloudpipe_server.models import Job, JobSpec, JobStatus
from cloudpipe_server.store.base import JobQuery
from cloudpipe_server.store.sqlite import SqliteJobStore

ALICE = Principal("alice")


def now() -> datetime:
    return datetime.now(UTC)


class CountingReads:
    """The real store, counting the job ids that `list_jobs` is asked for."""

    def __init__(self, store: SqliteJobStore) -> None:
        self._store = store
        self.ids_read = 0

    async def list_jobs(self, account: str, query: JobQuery) -> list[Job]:
        self.ids_read += len(query.ids)
        return await self._store.list_jobs(account, query)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def service_on(store: CountingReads, poll_interval: float) -> JobService:
    events, hub = JobEvents(), OutputHub()
    config = DispatcherConfig("watch-test", 2, 0.05, 3.0, 3, "image", 1.0, 1 << 30, 64, 3600.0)
    dispatcher = Dispatcher(store, FakeExecutor(now, owner="watch-test"), events, hub, config, now)  # type: ignore[arg-type]
    watch = Watch(store, dispatcher, events, hub, poll_interval)  # type: ignore[arg-type]
    return JobService(store, dispatcher, events, now, poll_interval, watch=watch)  # type: ignore[arg-type]


async def test_each_wake_reads_only_the_jobs_that_changed(store: SqliteJobStore) -> None:
    counting = CountingReads(store)
    service = service_on(counting, poll_interval=60)  # no sweep of every id within the test
    ids = await service.submit(ALICE, [JobSpec(cmd="true") for _ in range(150)])
    seen: list[int] = []

    async def watch() -> None:
        async for job in service.watch_many(ALICE, ids):
            seen.append(job.id)

    watching = asyncio.create_task(watch())
    await asyncio.sleep(0.1)
    first_read = counting.ids_read
    assert first_read == len(ids), "the watch starts by reading each job once"
    for job_id in ids:
        await service.kill(ALICE, job_id)
        await asyncio.sleep(0.03)  # past the watch's coalescing, so each kill is its own wake
    await asyncio.wait_for(watching, 10)
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
    after = counting.ids_read - first_read
    # before: each wake re-read every pending id, about 150 * 151 / 2 = 11,325 reads
    assert after <= len(ids), f"{after} ids read for {len(ids)} changed jobs"


async def test_a_change_no_event_announces_is_found_by_the_sweep(store: SqliteJobStore) -> None:
    """Another replica's kill publishes nothing here: the sweep every poll interval sees it."""
    counting = CountingReads(store)
    service = service_on(counting, poll_interval=0.2)
    ids = await service.submit(ALICE, [JobSpec(cmd="true") for _ in range(3)])
    watching = asyncio.create_task(anext(aiter(service.watch_many(ALICE, ids))))
    await asyncio.sleep(0.1)
    killed = await store.request_kill(ids[1], ALICE.account, now())  # straight to the store: no event
    assert killed.status is JobStatus.KILLED
    job = await asyncio.wait_for(watching, 5)
    assert (job.id, job.status) == (ids[1], JobStatus.KILLED)


async def test_a_subscription_says_which_jobs_changed() -> None:
    events = JobEvents()
    with events.subscribe([1, 2, 3]) as subscription:
        assert await subscription.changed(0.01) == set()
        events.publish(2)
        events.publish(4)  # not subscribed to
        events.publish(3)
        assert await subscription.changed(1) == {2, 3}
        events.unsubscribe(subscription, [2])
        events.publish(2)
        assert subscription.take() == set()
        waiting = asyncio.create_task(subscription.changed(5))
        await asyncio.sleep(0.01)
        events.publish(1)
        assert await asyncio.wait_for(waiting, 1) == {1}
    events.publish(1)  # after the block nobody is told, and nothing is kept
    assert subscription.take() == set() and not events._subscribers
