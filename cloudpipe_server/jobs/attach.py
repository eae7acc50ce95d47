"""Watching a job live: its output from given offsets, status changes, and the end.

Sources, in order of freshness: the live hub (jobs running in this process), output
batched but not yet stored, and the store (replays, jobs on other replicas, finished
jobs). Every chunk is cut against the offsets already sent, so overlapping sources never
duplicate a byte and a reconnecting client gets exactly the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from cloudpipe_server.jobs.events import JobEvents
from cloudpipe_server.jobs.output import OutputHub
from cloudpipe_server.jobs.runner import JobRunner
from cloudpipe_server.models import Job, OutputChunk, Stream
from cloudpipe_server.store.base import JobStore


@dataclass(frozen=True)
class AttachEvent:
    """One thing an attached client is told: output, a status change, or the end."""

    chunk: OutputChunk | None = None
    status: Job | None = None
    exit: Job | None = None


class Watch:
    """Follows one job for one client."""

    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        events: JobEvents,
        hub: OutputHub,
        poll_interval: float,
    ) -> None:
        self._store = store
        self._runner = runner
        self._events = events
        self._hub = hub
        self._poll_interval = poll_interval

    async def follow(self, job: Job, offsets: dict[Stream, int]) -> AsyncIterator[AttachEvent]:
        """Events until the job ended; `job` was read with the caller's account."""
        sent = dict(offsets)
        with self._hub.subscribe(job.id) as live:
            last_status = None
            need_backlog = True
            while True:
                if job.status is not last_status:
                    last_status = job.status
                    yield AttachEvent(status=job)
                if live.overflowed:  # we fell behind the live feed: the store has what was dropped
                    live.overflowed, need_backlog = False, True
                if need_backlog or job.status.terminal or not self._runner.runs_here(job.id):
                    for chunk in await self._backlog(job, sent):
                        yield AttachEvent(chunk=chunk)
                    need_backlog = False
                if job.status.terminal:
                    yield AttachEvent(exit=job)
                    return
                changed, arrived = await self._wait(job.id, live.queue)
                while not live.queue.empty():
                    arrived.append(live.queue.get_nowait())
                for chunk in arrived:
                    piece = _cut(chunk, sent)
                    if piece is not None:
                        yield AttachEvent(chunk=piece)
                    elif chunk.offset > sent[chunk.stream]:
                        need_backlog = True  # a gap: the bytes before it are in the store
                if changed:
                    job = await self._store.get(job.id, with_output=False)

    async def _backlog(self, job: Job, sent: dict[Stream, int]) -> list[OutputChunk]:
        """What the store and the unflushed batch hold beyond `sent`."""
        pieces: list[OutputChunk] = []
        for stream in Stream:
            data = await self._store.read_output(job.id, stream, sent[stream])
            if data:
                pieces.append(OutputChunk(stream, sent[stream], data))
                sent[stream] += len(data)
        if not job.status.terminal:
            for chunk in self._runner.unflushed_output(job.id):
                piece = _cut(chunk, sent)
                if piece is not None:
                    pieces.append(piece)
        return pieces

    async def _wait(self, job_id: int, live: asyncio.Queue[OutputChunk]) -> tuple[bool, list[OutputChunk]]:
        """Wait for live output, a change of the job, or the poll interval. Returns
        whether the job should be read again, and the live output that arrived."""
        if not live.empty():
            return False, []
        getter = asyncio.ensure_future(live.get())
        changed = asyncio.ensure_future(self._events.wait(job_id, self._poll_interval))
        done, pending = await asyncio.wait({getter, changed}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()  # a cancelled Queue.get loses no item
        return changed in done, [getter.result()] if getter in done else []


def _cut(chunk: OutputChunk, sent: dict[Stream, int]) -> OutputChunk | None:
    """The part of `chunk` beyond what was sent of its stream (None if nothing, or if
    the chunk starts after a gap)."""
    start = sent[chunk.stream]
    end = chunk.offset + len(chunk.data)
    if end <= start or chunk.offset > start:
        return None
    sent[chunk.stream] = end
    return OutputChunk(chunk.stream, start, chunk.data[start - chunk.offset :])
