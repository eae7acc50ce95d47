"""`Client.map` and `Client.starmap`: many calls of one function, submitted in a few
Submit RPCs, results in order.

With `chunksize=k` each job calls the function on k consecutive items (as
`list(map(fn, ...))` in the runner) and returns their results as one list, which saves
a container start per item for short calls.
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._errors import CloudpipeError, InvalidRequest, Timeout, Unavailable
from cloudpipe_sdk._options import JobOptions, qualname
from cloudpipe_sdk._outcome import outcome
from cloudpipe_sdk._progress import progress_bar, wanted
from cloudpipe_sdk._waiting import FETCH_BATCH, Watcher, fetch

if TYPE_CHECKING:
    from cloudpipe_sdk._client import Client
    from cloudpipe_sdk._job import Job


def submit_map(
    client: Client,
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    *,
    options: JobOptions,
    chunksize: int | None,
    timeout: float | None,
    return_exceptions: bool,
    progress: bool | None,
) -> Iterator[Any]:
    """Submit one job per call (or per chunk of calls) now; return an iterator of the
    results in call order."""
    deadline = None if timeout is None else time.monotonic() + timeout
    size = chunksize or 1
    if size < 1:
        raise InvalidRequest(f"chunksize: must be at least 1, got {chunksize}")
    chunks = [calls[start : start + size] for start in range(0, len(calls), size)]
    serializer = client._serializer
    specs = []
    for chunk in chunks:
        if size == 1:
            spec = options.function_spec(fn, chunk[0], {}, serializer=serializer)
        else:
            spec = options.function_spec(list, (map(fn, *_columns(chunk)),), {}, serializer=serializer)
            spec.tags["function"] = qualname(fn)
        specs.append(spec)
    jobs = client._submit_specs(specs)
    show = wanted(progress, sys.stderr)
    return _results(client, jobs, [len(c) for c in chunks], size > 1, deadline, timeout, return_exceptions, show)


def _columns(chunk: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    if len({len(args) for args in chunk}) != 1 or not chunk[0]:
        raise InvalidRequest("chunksize > 1 needs calls with the same number (at least one) of arguments")
    return list(zip(*chunk, strict=True))


def _results(
    client: Client,
    jobs: list[Job],
    counts: list[int],
    chunked: bool,
    deadline: float | None,
    timeout: float | None,
    return_exceptions: bool,
    show_progress: bool,
) -> Iterator[Any]:
    finished: set[int] = set()
    watcher: Watcher | None = None
    completed = False
    try:
        with progress_bar(len(jobs), enabled=show_progress, description="map") as tracker:
            watcher = Watcher(client, [job.id for job in jobs], timeout=timeout) if jobs else None
            for index, job in enumerate(jobs):
                while job.id not in finished:
                    assert watcher is not None
                    for event in _arrived(watcher, deadline, timeout, len(jobs) - len(finished)):
                        finished.add(event.id)
                        tracker.advance(failed=int(event.status != pb.JOB_STATUS_DONE))
                ahead = [j for j in jobs[index : index + FETCH_BATCH] if j.id in finished and j._snapshot is None]
                if job._snapshot is None:
                    fetch(client, ahead)
                try:
                    value = outcome(job.snapshot)
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    values: list[Any] = [exc] * counts[index]
                else:
                    values = list(value) if chunked else [value]
                job._snapshot = None  # results are handed out once; keep memory flat
                yield from values
        completed = True
    finally:
        if watcher is not None:
            watcher.close()
        if not completed:
            _kill_unfinished(client, [job for job in jobs if job.id not in finished])


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


def _kill_unfinished(client: Client, jobs: list[Job]) -> None:
    """Like Executor.map cancelling its pending futures: the map was abandoned. Best
    effort: one Kill per job without retries, and none after the server is found
    unavailable (a map of thousands would otherwise retry each for `retry_for`)."""
    for job in jobs:
        try:
            client._call(client._stub.Kill, pb.KillJobRequest(id=job.id), retry=False)
        except Unavailable:
            return
        except CloudpipeError:
            pass
