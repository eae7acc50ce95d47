"""Waiting on many jobs: `as_completed` and `wait`, with concurrent.futures semantics,
over the WatchMany RPC (one stream per client per 10,000 jobs, not one per job).

Example::

    from concurrent.futures import FIRST_EXCEPTION
    from cloudpipe_sdk import as_completed, wait

    jobs = [client.submit(pow, 2, n) for n in range(10)]
    for job in as_completed(jobs, timeout=300):
        print(job.id, job.result())
    done, not_done = wait(jobs, return_when=FIRST_EXCEPTION)
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION
from typing import TYPE_CHECKING, NamedTuple, Protocol

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._errors import CloudpipeError, InvalidRequest, Timeout, Unavailable, from_rpc_error
from cloudpipe_sdk._job_calls import FETCH_BATCH, WATCH_LIMIT
from cloudpipe_sdk._job_calls import fetch as fetch_plan
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._types import JobSnapshot

if TYPE_CHECKING:
    from cloudpipe_sdk._job import Job
    from cloudpipe_sdk._transport import Transport

RETURN_WHEN = (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION)
# What watchers put on their queue: (the watcher, an event), or the error that ended it.
Item = tuple["Watcher", pb.JobStatusEvent] | CloudpipeError


class DoneAndNotDone(NamedTuple):
    """What `wait` returns: the jobs that finished, and the others."""

    done: set[Job]
    not_done: set[Job]


class Watcher:
    """Terminal status events of jobs of one client, read from WatchMany streams by
    daemon threads into `events` (a queue shared by several watchers if given). A lost
    connection is re-established for the jobs not reported yet. An error that is not
    UNAVAILABLE (or too many reconnections) is put on the queue as a CloudpipeError."""

    def __init__(
        self,
        transport: Transport,
        ids: Sequence[int],
        events: queue.Queue[Item] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.transport = transport
        self.events: queue.Queue[Item] = events if events is not None else queue.Queue()
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._closed = False
        self._lock = threading.Lock()
        self._calls: list[grpc.Future] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), WATCH_LIMIT):
            chunk = unique[start : start + WATCH_LIMIT]
            threading.Thread(target=self._pump, args=(chunk,), daemon=True, name="cloudpipe-watch").start()

    def _pump(self, ids: list[int]) -> None:
        pending = set(ids)
        outage = self.transport.outage(f"watching jobs at {self.transport.address}")
        while pending and not self._closed:
            remaining = None if self._deadline is None else self._deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return  # the waiter times out by itself
            try:
                outage.opened()
                call = self.transport.watch(pending, timeout=remaining)
                with self._lock:
                    if self._closed:
                        call.cancel()
                        return
                    self._calls.append(call)
                for event in call:
                    outage.progress()
                    if event.id in pending:
                        pending.discard(event.id)
                        self.events.put((self, event))
                return
            except grpc.RpcError as exc:
                if self._closed or exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    self.events.put(from_rpc_error(exc))
                    return
            try:
                delay = outage.delay()
            except Unavailable as exc:
                self.events.put(exc)
                return
            time.sleep(delay)

    def close(self) -> None:
        """Stop watching (the jobs keep running)."""
        with self._lock:
            self._closed = True
            calls, self._calls = self._calls, []
        for call in calls:
            call.cancel()


def fetch(transport: Transport, jobs: Sequence[Job]) -> None:
    """Refresh the snapshots of these jobs of one transport, FETCH_BATCH per List call."""
    settle(jobs, transport.run(fetch_plan([job.id for job in jobs])))


class _Handle(Protocol):
    id: int
    _snapshot: JobSnapshot | None


def settle(jobs: Sequence[_Handle], snapshots: Sequence[JobSnapshot]) -> None:
    """Give each job (Job or AsyncJob) its fetched snapshot."""
    by_id = {snapshot.id: snapshot for snapshot in snapshots}
    for job in jobs:
        if job.id in by_id:
            job._snapshot = by_id[job.id]


def known_finished(job: _Handle) -> bool:
    return job._snapshot is not None and job._snapshot.status.finished


def check_return_when(return_when: str) -> None:
    if return_when not in RETURN_WHEN:
        raise InvalidRequest(f"return_when: {return_when!r} is not FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED")


def stops_waiting(job: _Handle, return_when: str) -> bool:
    """Whether `wait(..., return_when)` returns once this job finished."""
    failed = job._snapshot is not None and job._snapshot.status is not JobStatus.DONE
    return return_when == FIRST_COMPLETED or (return_when == FIRST_EXCEPTION and failed)


def as_completed(jobs: Iterable[Job], timeout: float | None = None) -> Iterator[Job]:
    """Yield the jobs as they finish (finished ones first), each once, with its final
    state already fetched (so `job.result()` needs no further call). Raises Timeout
    (a TimeoutError) when `timeout` seconds pass before all have finished.

    Example::

        for job in as_completed(jobs, timeout=600):
            print(job.id, job.status)
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    unique = list(dict.fromkeys(jobs))
    for job in unique:
        if known_finished(job):
            yield job
    groups: dict[int, list[Job]] = {}
    for job in unique:
        if not known_finished(job):
            groups.setdefault(id(job.transport), []).append(job)
    if not groups:
        return
    events: queue.Queue[Item] = queue.Queue()
    owners: dict[tuple[Watcher, int], list[Job]] = {}
    watchers = []
    for group in groups.values():
        watcher = Watcher(group[0].transport, [job.id for job in group], events, timeout)
        watchers.append(watcher)
        for job in group:
            owners.setdefault((watcher, job.id), []).append(job)
    left = len(owners)
    try:
        while left:
            batch = [_next(events, deadline, left, timeout)]
            while len(batch) < FETCH_BATCH:  # jobs that finished together share one fetch
                try:
                    batch.append(_checked(events.get_nowait()))
                except queue.Empty:
                    break
            left -= len(batch)
            for watcher in watchers:
                ready = [job for w, event in batch if w is watcher for job in owners[(w, event.id)]]
                if ready:
                    fetch(watcher.transport, ready)
                    yield from ready
    finally:
        for watcher in watchers:
            watcher.close()


def _next(
    events: queue.Queue[Item], deadline: float | None, left: int, timeout: float | None
) -> tuple[Watcher, pb.JobStatusEvent]:
    remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    try:
        return _checked(events.get(timeout=remaining))
    except queue.Empty:
        raise Timeout(f"{left} job(s) did not finish within {timeout} s") from None


def _checked(item: Item) -> tuple[Watcher, pb.JobStatusEvent]:
    if isinstance(item, CloudpipeError):
        raise item
    return item


def wait(jobs: Iterable[Job], timeout: float | None = None, return_when: str = ALL_COMPLETED) -> DoneAndNotDone:
    """Wait until the jobs finish, as concurrent.futures.wait does: return when one
    finished (`FIRST_COMPLETED`), when one failed or all finished (`FIRST_EXCEPTION`),
    or when all finished (`ALL_COMPLETED`, the default), or after `timeout` seconds,
    whichever is first. Never raises Timeout: unfinished jobs are in `not_done`.

    Example::

        done, not_done = wait(jobs, timeout=60, return_when=FIRST_COMPLETED)
    """
    check_return_when(return_when)
    unique = set(jobs)
    done: set[Job] = set()
    try:
        for job in as_completed(unique, timeout):
            done.add(job)
            if stops_waiting(job, return_when):
                break
    except Timeout:
        pass
    return DoneAndNotDone(done, unique - done)
