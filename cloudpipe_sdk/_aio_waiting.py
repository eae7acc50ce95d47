"""Waiting on many jobs for asyncio: `as_completed`, `wait` and the results of a map,
over WatchMany streams (one task per WATCH_LIMIT ids). The bookkeeping is the sync
side's (`cloudpipe_sdk._waiting`, `cloudpipe_sdk._mapping.MapResults`); this module
only does the asyncio I/O."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from concurrent.futures import ALL_COMPLETED
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._compat import within
from cloudpipe_sdk._errors import CloudpipeError, Timeout, Unavailable, from_rpc_error
from cloudpipe_sdk._job_calls import WATCH_LIMIT, kill_job
from cloudpipe_sdk._job_calls import fetch as fetch_plan
from cloudpipe_sdk._mapping import MapResults
from cloudpipe_sdk._progress import progress_bar
from cloudpipe_sdk._waiting import check_return_when, known_finished, settle, stops_waiting

if TYPE_CHECKING:
    from cloudpipe_sdk._aio_job import AsyncJob
    from cloudpipe_sdk._transport import AsyncTransport


class AsyncDoneAndNotDone(NamedTuple):
    done: set[AsyncJob]
    not_done: set[AsyncJob]


class Watch:
    """Terminal events of jobs from WatchMany streams, reconnecting under the outage
    policy; an error ends it (raised by `next`)."""

    def __init__(self, transport: AsyncTransport, ids: Sequence[int], timeout: float | None) -> None:
        self._transport = transport
        self._ids = list(dict.fromkeys(ids))
        self._timeout = timeout
        self._queue: asyncio.Queue[pb.JobStatusEvent | CloudpipeError] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Watch:
        for start in range(0, len(self._ids), WATCH_LIMIT):
            self._tasks.append(asyncio.create_task(self._pump(self._ids[start : start + WATCH_LIMIT])))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pump(self, ids: list[int]) -> None:
        pending = set(ids)
        outage = self._transport.outage(f"watching jobs at {self._transport.address}")
        while pending:
            outage.opened()
            call = self._transport.watch(pending, timeout=self._timeout)
            try:
                async for event in call:
                    outage.progress()
                    if event.id in pending:
                        pending.discard(event.id)
                        await self._queue.put(event)
                return
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    await self._queue.put(from_rpc_error(exc))
                    return
            try:
                delay = outage.delay()
            except Unavailable as exc:
                await self._queue.put(exc)
                return
            await asyncio.sleep(delay)

    async def next(self, deadline: float | None, left: int) -> list[pb.JobStatusEvent]:
        """The next event and any others already queued; Timeout at the deadline."""
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            items = [await within(self._queue.get(), remaining)]
        except TimeoutError:
            raise Timeout(f"{left} job(s) did not finish in time") from None
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        events = []
        for item in items:
            if isinstance(item, CloudpipeError):
                raise item
            events.append(item)
        return events


async def fetch(transport: AsyncTransport, jobs: Sequence[AsyncJob]) -> None:
    """Refresh the snapshots of these jobs, FETCH_BATCH per List call."""
    settle(jobs, await transport.run(fetch_plan([job.id for job in jobs])))


async def as_completed(
    transport: AsyncTransport, jobs: Iterable[AsyncJob], timeout: float | None = None
) -> AsyncGenerator[AsyncJob]:
    """Yield the jobs (of this transport) as they finish (finished ones first), their
    final state fetched. Raises Timeout after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    unique = list(dict.fromkeys(jobs))
    pending: dict[int, list[AsyncJob]] = {}
    for job in unique:
        if known_finished(job):
            yield job
        else:
            pending.setdefault(job.id, []).append(job)
    if not pending:
        return
    async with Watch(transport, list(pending), timeout) as watch:
        left = len(pending)
        while left:
            events = await watch.next(deadline, left)
            ready = [job for event in events for job in pending.get(event.id, [])]
            left -= len(events)
            await fetch(transport, ready)
            for job in ready:
                yield job


async def wait(
    transport: AsyncTransport, jobs: Iterable[AsyncJob], timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> AsyncDoneAndNotDone:
    """As `cloudpipe_sdk.wait`, for asyncio."""
    check_return_when(return_when)
    unique = set(jobs)
    done: set[AsyncJob] = set()
    iterator = as_completed(transport, unique, timeout)
    try:
        async for job in iterator:
            done.add(job)
            if stops_waiting(job, return_when):
                break
    except Timeout:
        pass
    finally:
        await iterator.aclose()
    return AsyncDoneAndNotDone(done, unique - done)


async def map_results(transport: AsyncTransport, results: MapResults[AsyncJob]) -> AsyncIterator[Any]:
    """As `cloudpipe_sdk._mapping.map_results`, for asyncio."""
    jobs, (deadline, timeout) = results.jobs, (results.plan.deadline, results.plan.timeout)
    completed = False
    try:
        with progress_bar(len(jobs), enabled=results.plan.show_progress, description="map") as tracker:
            async with Watch(transport, [job.id for job in jobs], timeout) as watch:
                for index, job in enumerate(jobs):
                    while job.id not in results.finished:
                        results.record(await watch.next(deadline, results.left), tracker)
                    await fetch(transport, results.to_fetch(index))
                    for value in results.values(index):
                        yield value
        completed = True
    finally:
        if not completed:  # best effort, as in Client.map: one try each, none once unavailable
            for job_id in results.unfinished():
                try:
                    await transport.call(kill_job(job_id, retry=False))
                except Unavailable:
                    break
                except CloudpipeError:
                    pass
