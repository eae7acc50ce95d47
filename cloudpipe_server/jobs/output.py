"""Live output of the jobs this process runs: fanned out to attached watchers the
moment the executor reads it, and written to the store in batches (every 100 ms or
256 KiB) so that `Get` shows it and a restart loses at most the last batch."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from cloudpipe_common.waiting import wait_set
from cloudpipe_server.errors import StoreUnavailable
from cloudpipe_server.models import OutputChunk
from cloudpipe_server.store.base import JobStore

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1
FLUSH_BYTES = 256 << 10
SUBSCRIBER_CHUNKS = 1024  # live chunks a slow watcher may lag behind before it reads the store
MAX_PENDING_BYTES = 64 << 20  # unstored output kept through a store outage


class Subscription:
    """A watcher's live feed: a bounded queue; when it overflows, chunks are dropped and
    `overflowed` is set, so the watcher fills the gap from the store."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[OutputChunk] = asyncio.Queue(SUBSCRIBER_CHUNKS)
        self.overflowed = False

    def put(self, chunk: OutputChunk) -> None:
        try:
            self.queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self.overflowed = True


class OutputHub:
    """Per-job subscriptions. Publishing and subscribing happen on the event loop."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[int, set[Subscription]] = defaultdict(set)

    def publish(self, job_id: int, chunk: OutputChunk) -> None:
        for subscription in self._subscribers.get(job_id, ()):
            subscription.put(chunk)

    @contextmanager
    def subscribe(self, job_id: int) -> Iterator[Subscription]:
        subscription = Subscription()
        self._subscribers[job_id].add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers[job_id]
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[job_id]


class OutputWriter:
    """Batches one running job's output into `JobStore.append_output`."""

    def __init__(self, store: JobStore, job_id: int, owner: str, attempt: int) -> None:
        self._store = store
        self._job_id = job_id
        self._owner = owner
        self._attempt = attempt
        self._pending: list[OutputChunk] = []
        self._inflight: list[OutputChunk] = []
        self._pending_bytes = 0
        self._due = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name=f"cloudpipe-output-{job_id}")

    def add(self, chunk: OutputChunk) -> None:
        if self._pending_bytes >= MAX_PENDING_BYTES:
            return  # the store is away for long: the job's final output replaces these anyway
        self._pending.append(chunk)
        self._pending_bytes += len(chunk.data)
        if self._pending_bytes >= FLUSH_BYTES:
            self._due.set()

    async def _loop(self) -> None:
        while True:
            await wait_set(self._due, FLUSH_INTERVAL)
            self._due.clear()
            if self._pending:
                try:
                    await self._flush()
                except Exception:  # never take the job down: its final output replaces these
                    log.exception("job %d: storing output failed; dropping this batch", self._job_id)

    def unflushed(self) -> list[OutputChunk]:
        """Output not yet (known to be) in the store, oldest first."""
        return [*self._inflight, *self._pending]

    async def _flush(self) -> None:
        chunks, self._pending, self._pending_bytes = merge(self._pending), [], 0
        self._inflight = chunks
        try:
            if not await self._store.append_output(self._job_id, self._owner, chunks, attempt=self._attempt):
                log.warning("job %d: output not stored: the lease was lost", self._job_id)
        except StoreUnavailable as exc:  # keep them for the next flush
            log.warning("job %d: storing output failed, will retry: %s", self._job_id, exc)
            self._pending[:0] = chunks
            self._pending_bytes += sum(len(c.data) for c in chunks)
        finally:
            self._inflight = []

    async def close(self) -> None:
        """Stop writing; the job's final output replaces what was appended."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def merge(chunks: list[OutputChunk]) -> list[OutputChunk]:
    """Join chunks that continue each other in the same stream: fewer, larger rows."""
    merged: list[tuple[OutputChunk, bytearray]] = []
    last: dict[int, int] = {}
    for chunk in chunks:
        index = last.get(chunk.stream)
        if index is not None:
            first, data = merged[index]
            if first.offset + len(data) == chunk.offset:
                data += chunk.data
                continue
        last[chunk.stream] = len(merged)
        merged.append((chunk, bytearray(chunk.data)))
    return [OutputChunk(first.stream, first.offset, bytes(data)) for first, data in merged]
