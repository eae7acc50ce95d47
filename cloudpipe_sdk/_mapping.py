"""`Client.map` and `Client.starmap`: many calls of one function, submitted in a few
Submit RPCs, results in order. `MapResults` is the bookkeeping both clients use (which
jobs finished, what to fetch ahead, the values of a job in turn); `map_results` is the
synchronous loop over it (the asyncio one is in `cloudpipe_sdk._aio_waiting`).

With `chunksize=k` each job calls the function on k consecutive items (as
`list(map(fn, ...))` in the runner) and returns their results as one list, which saves
a container start per item for short calls.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._errors import CloudpipeError, Timeout, Unavailable
from cloudpipe_sdk._job_calls import FETCH_BATCH, kill_job
from cloudpipe_sdk._outcome import outcome
from cloudpipe_sdk._progress import Tracker, progress_bar
from cloudpipe_sdk._types import JobSnapshot, JobSpec
from cloudpipe_sdk._waiting import Watcher, fetch

if TYPE_CHECKING:
    from cloudpipe_sdk._job import Job
    from cloudpipe_sdk._transport import Transport


class _Handle(Protocol):
    id: int
    _snapshot: JobSnapshot | None


H = TypeVar("H", bound=_Handle)


@dataclass(frozen=True)
class MapPlan:
    """A map before it is submitted: its specs, how many calls each makes, and how its
    results are collected (`BaseClient._map_plan` makes it)."""

    specs: list[JobSpec]
    counts: list[int]
    chunked: bool
    return_exceptions: bool
    deadline: float | None
    timeout: float | None
    show_progress: bool

    def results(self, jobs: Sequence[H]) -> MapResults[H]:
        """The bookkeeping of the map, once submitted as `jobs`."""
        return MapResults(jobs, self)


class MapResults(Generic[H]):
    """The jobs of one map, in call order, and what has become of them."""

    def __init__(self, jobs: Sequence[H], plan: MapPlan) -> None:
        self.jobs = list(jobs)
        self.plan = plan
        self._counts = plan.counts
        self._chunked = plan.chunked
        self._return_exceptions = plan.return_exceptions
        self.finished: set[int] = set()

    def record(self, events: Sequence[pb.JobStatusEvent], tracker: Tracker) -> None:
        for event in events:
            self.finished.add(event.id)
            tracker.advance(failed=int(event.status != pb.JOB_STATUS_DONE))

    @property
    def left(self) -> int:
        return len(self.jobs) - len(self.finished)

    def to_fetch(self, index: int) -> list[H]:
        """The jobs to fetch before the values of job `index` can be given: it and the
        finished ones just after it (one List call for a run of them), or none."""
        if self.jobs[index]._snapshot is not None:
            return []
        ahead = self.jobs[index : index + FETCH_BATCH]
        return [job for job in ahead if job.id in self.finished and job._snapshot is None]

    def values(self, index: int) -> list[Any]:
        """The results of job `index` (raising its failure unless return_exceptions);
        its snapshot is dropped: results are handed out once, memory stays flat."""
        job = self.jobs[index]
        assert job._snapshot is not None
        try:
            value = outcome(job._snapshot)
        except Exception as exc:
            if not self._return_exceptions:
                raise
            return [exc] * self._counts[index]
        finally:
            job._snapshot = None
        return list(value) if self._chunked else [value]

    def unfinished(self) -> list[int]:
        return [job.id for job in self.jobs if job.id not in self.finished]


def map_results(transport: Transport, results: MapResults[Job]) -> Iterator[Any]:
    """The values of a submitted map, in order; abandoned, it kills what is unfinished."""
    jobs, (deadline, timeout) = results.jobs, (results.plan.deadline, results.plan.timeout)
    watcher: Watcher | None = None
    completed = False
    try:
        with progress_bar(len(jobs), enabled=results.plan.show_progress, description="map") as tracker:
            watcher = Watcher(transport, [job.id for job in jobs], timeout=timeout) if jobs else None
            for index, job in enumerate(jobs):
                while job.id not in results.finished:
                    assert watcher is not None
                    results.record(_arrived(watcher, deadline, timeout, results.left), tracker)
                fetch(transport, results.to_fetch(index))
                yield from results.values(index)
        completed = True
    finally:
        if watcher is not None:
            watcher.close()
        if not completed:
            kill_unfinished(transport, results.unfinished())


def _arrived(watcher: Watcher, deadline: float | None, timeout: float | None, left: int) -> list[pb.JobStatusEvent]:
    """The next terminal event, and any others already queued."""
    remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    try:
        items = [watcher.events.get(timeout=remaining)]
    except queue.Empty:
        raise Timeout(f"{left} job(s) of the map did not finish within {timeout} s") from None
    while True:
        try:
            items.append(watcher.events.get_nowait())
        except queue.Empty:
            break
    events = []
    for item in items:
        if isinstance(item, CloudpipeError):
            raise item
        events.append(item[1])
    return events


def kill_unfinished(transport: Transport, ids: list[int]) -> None:
    """Like Executor.map cancelling its pending futures: the map was abandoned. Best
    effort: one Kill per job without retries, and none after the server is found
    unavailable (a map of thousands would otherwise retry each for `retry_for`)."""
    for job_id in ids:
        try:
            transport.call(kill_job(job_id, retry=False))
        except Unavailable:
            return
        except CloudpipeError:
            pass
