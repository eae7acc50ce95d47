"""Output of running jobs in the PostgreSQL store: chunks in `job_output`, one row per
appended chunk, so an append writes only its own bytes. Chunks exist only while a job
is PROCESSING: `finish` replaces them by the outcome's output, the reaper discards them
(requeue) or moves them into the job's row (stall).

A stream's chunks never overlap: an append stores only what goes beyond the stream's
stored end (as `_shared.unstored` decides), and reads stop at the first gap
(`_shared.read_from`, applied to the chunks a statement returns).

An append is one transaction, sent as one pipeline: it first takes a FOR NO KEY UPDATE
lock on the job's row while it checks the lease, so it serialises with the row-locking
writers that end a lease (finish, the reaper), which commit either before the append
looks (it then stores nothing) or after it committed (their next statement sees its
chunks), and with another append of the same job, whose chunks its insert (a statement
of its own, so a fresh snapshot) then sees. Reads of a job with its live output are
one statement, so one snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import LiteralString

from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow

from cloudpipe_server.errors import NotFound
from cloudpipe_server.models import OutputChunk, Stream
from cloudpipe_server.store._shared import read_from
from cloudpipe_server.store.postgres.database import Conn, fetch_all

# A PROCESSING job's chunks so far, per stream: their offsets and their bytes, in offset
# order (NULL when there are none); `live` makes the stream of them. Parameter: the
# condition under which they are read.
_LIVE = """
    CASE WHEN {0} THEN (SELECT array_agg("offset" ORDER BY "offset") FROM job_output
        WHERE job_id = jobs.id AND stream = 1) END AS live_stdout_at,
    CASE WHEN {0} THEN (SELECT array_agg(data ORDER BY "offset") FROM job_output
        WHERE job_id = jobs.id AND stream = 1) END AS live_stdout,
    CASE WHEN {0} THEN (SELECT array_agg("offset" ORDER BY "offset") FROM job_output
        WHERE job_id = jobs.id AND stream = 2) END AS live_stderr_at,
    CASE WHEN {0} THEN (SELECT array_agg(data ORDER BY "offset") FROM job_output
        WHERE job_id = jobs.id AND stream = 2) END AS live_stderr
"""
# A job row plus, for a PROCESSING job, its chunks so far.
SELECT_JOBS = ("SELECT jobs.*," + _LIVE.format("status = 'processing'") + " FROM jobs").encode()
# The chunks of jobs, whatever their status.
_SELECT_CHUNKS = ("SELECT id," + _LIVE.format("TRUE") + " FROM jobs WHERE id = ANY(%s)").encode()

# The lease is held: parameters id, owner, attempt, attempt (None: any attempt).
HELD: LiteralString = "id = %s AND lease_owner = %s AND status = 'processing' AND (%s::int IS NULL OR attempts = %s)"

_LOCK = "SELECT id FROM jobs WHERE " + HELD + " FOR NO KEY UPDATE"
# The chunks, each from the greatest of its offset, the end of earlier chunks of its
# stream in the same append (`prior`) and the stream's stored end (its last chunk's).
_INSERT = """
    INSERT INTO job_output (job_id, stream, "offset", data)
    SELECT %(id)s, c.stream, s.start, substring(c.data FROM (s.start - c.start)::int + 1)
    FROM unnest(%(streams)s::smallint[], %(starts)s::bigint[], %(datas)s::bytea[], %(priors)s::bigint[])
        AS c(stream, start, data, prior)
    CROSS JOIN LATERAL (SELECT greatest(c.start, c.prior, COALESCE((
        SELECT o."offset" + length(o.data) FROM job_output o WHERE o.job_id = %(id)s AND o.stream = c.stream
        ORDER BY o."offset" DESC LIMIT 1), 0)) AS start) s
    WHERE s.start < c.start + length(c.data) AND EXISTS (SELECT 1 FROM jobs WHERE id = %(id)s
        AND lease_owner = %(owner)s AND status = 'processing' AND (%(attempt)s::int IS NULL OR attempts = %(attempt)s))
    ON CONFLICT DO NOTHING
"""

# The stream's final output from the offset on, or (one row per chunk) its chunks.
_READ = """
    SELECT jobs.account, jobs.status = 'processing' AS running,
        CASE WHEN jobs.status <> 'processing'
            THEN substring(CASE WHEN %(stream)s = 1 THEN stdout ELSE stderr END
                FROM least(%(offset)s::bigint, 2147483646)::int + 1) END AS tail,
        o."offset", o.n, o.data
    FROM jobs LEFT JOIN LATERAL (
        SELECT "offset", length(data) AS n, CASE WHEN "offset" + length(data) > %(offset)s::bigint THEN data END AS data
        FROM job_output WHERE jobs.status = 'processing' AND job_id = jobs.id AND stream = %(stream)s
    ) o ON TRUE
    WHERE jobs.id = %(id)s
    ORDER BY o."offset"
"""


async def append(
    conn: Conn, job_id: int, owner: str, chunks: Sequence[OutputChunk], attempt: int | None = None
) -> bool:
    chunks = [chunk for chunk in chunks if chunk.data]
    priors: list[int] = []
    ends: dict[Stream, int] = {}
    for chunk in chunks:
        priors.append(ends.get(chunk.stream, 0))
        ends[chunk.stream] = max(ends.get(chunk.stream, 0), chunk.offset + len(chunk.data))
    async with pipelined_transaction(conn):
        held = await conn.execute(_LOCK, (job_id, owner, attempt, attempt))
        if chunks:
            columns = {
                "streams": [int(c.stream) for c in chunks],
                "starts": [c.offset for c in chunks],
                "datas": [c.data for c in chunks],
                "priors": priors,
            }
            await conn.execute(_INSERT, {"id": job_id, "owner": owner, "attempt": attempt, **columns})
    return await held.fetchone() is not None


async def read(conn: Conn, job_id: int, stream: Stream, offset: int, account: str | None) -> bytes:
    offset = max(offset, 0)
    cursor = await conn.execute(_READ, {"id": job_id, "stream": int(stream), "offset": offset})
    rows = await cursor.fetchall()
    if not rows or (account is not None and rows[0]["account"] != account):
        raise NotFound(f"job {job_id} not found")
    if not rows[0]["running"]:
        return bytes(rows[0]["tail"] or b"")
    chunks = [(row["offset"], row["n"], row["data"]) for row in rows if row["offset"] is not None]
    return read_from(((start, n, None if data is None else bytes(data)) for start, n, data in chunks), offset)


def live(row: DictRow, name: str) -> bytes | None:
    """A PROCESSING job's stream `name` ("stdout", "stderr") from the `SELECT_JOBS`
    columns of `row`; None when it has no chunks (or is not PROCESSING)."""
    datas = row.get(f"live_{name}")
    if datas is None:
        return None
    starts = row[f"live_{name}_at"]
    return read_from(((start, len(data), bytes(data)) for start, data in zip(starts, datas, strict=True)), 0)


async def keep(conn: Conn, job_ids: Sequence[int]) -> None:
    """Move the chunks into the jobs' stdout/stderr (jobs that end without an outcome)."""
    if not job_ids:
        return
    rows = await fetch_all(conn, _SELECT_CHUNKS, (list(job_ids),))
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "UPDATE jobs SET stdout = %s, stderr = %s WHERE id = %s",
            [(live(row, "stdout") or b"", live(row, "stderr") or b"", row["id"]) for row in rows],
        )
    await discard(conn, job_ids)


@asynccontextmanager
async def pipelined_transaction(conn: Conn) -> AsyncIterator[None]:
    """The statements of the block in one transaction, sent as one pipeline: one round
    trip (`conn.transaction()`, even inside `conn.pipeline()`, made `finish` take twice as
    long). Results are read after the block. Rolled back when anything failed."""
    try:
        async with conn.pipeline():
            await conn.execute("BEGIN")
            yield
            await conn.execute("COMMIT")
    finally:
        if not conn.closed and conn.info.transaction_status is not TransactionStatus.IDLE:
            await conn.execute("ROLLBACK")


async def discard_ended(conn: Conn, job_id: int) -> None:
    """Delete the chunks of a job unless it is (still, or again) PROCESSING: queued in the
    pipeline of `finish`, before its UPDATE's outcome is known."""
    await conn.execute(
        "DELETE FROM job_output WHERE job_id = %s"
        " AND NOT EXISTS (SELECT 1 FROM jobs WHERE id = %s AND status = 'processing')",
        (job_id, job_id),
    )


async def discard(conn: Conn, job_ids: Sequence[int]) -> None:
    if job_ids:
        await conn.execute("DELETE FROM job_output WHERE job_id = ANY(%s)", (list(job_ids),))
