"""`OutputWriter.close()` ends the writer's flush loop whenever it comes, on a real
SQLite store. On Python 3.11, `asyncio.wait_for` returns the inner result instead of
raising when a cancellation arrives just as the inner wait completes; the loop waited
with it, so a close that came as output arrived was lost and `close()` never returned.
The dispatcher awaits it before recording a job's outcome: a 10 MB job stayed
PROCESSING for good (the busy-account UI test under load)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cloudpipe_server.jobs.output import FLUSH_BYTES, OutputWriter
from cloudpipe_server.models import JobSpec, OutputChunk, Stream
from cloudpipe_server.store.sqlite import SqliteJobStore

OWNER = "writer-test"


async def test_a_close_that_comes_as_output_arrives_ends_the_writer(store: SqliteJobStore) -> None:
    now = datetime.now(UTC)
    [job_id] = await store.submit("alice", [JobSpec(cmd="true")], now)
    [job] = await store.claim(OWNER, now, timedelta(seconds=60), 1)
    assert job.id == job_id
    # Each round hands the loop's wait a due flush and closes after `ticks` turns of
    # the event loop: one of them lands between the wait's end and the loop resuming.
    for ticks in range(8):
        for _ in range(5):
            writer = OutputWriter(store, job_id, OWNER, job.attempts)
            await asyncio.sleep(0.01)  # the loop waits for the next batch
            writer.add(OutputChunk(Stream.STDOUT, 0, b"x" * FLUSH_BYTES))
            for _ in range(ticks):
                await asyncio.sleep(0)
            try:
                async with asyncio.timeout(5):
                    await writer.close()
            except TimeoutError:
                pytest.fail(f"close() after {ticks} loop turn(s) never returned: its cancellation was lost")
