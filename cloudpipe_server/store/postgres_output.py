"""Output of running jobs in the PostgreSQL store: chunks in `job_output`, one row per
appended chunk, so an append writes only its own bytes. Chunks exist only while a job
is PROCESSING: `finish` replaces them by the outcome's output, the reaper discards them
(requeue) or moves them into the job's row (stall).

An append is one statement that takes a FOR SHARE lock on the job's row while it checks
the lease, so it serialises with the row-locking writers that end a lease (finish, the
reaper): those commit either before the append looks (it then stores nothing) or after
it committed, and their next statement sees its chunks. Reads of a job with its live
output are one statement too, so one snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import LiteralString

from psycopg.pq import TransactionStatus

from cloudpipe_server.errors import NotFound
from cloudpipe_server.models import OutputChunk, Stream
from cloudpipe_server.store.common import read_from
from cloudpipe_server.store.postgres_db import Conn

# A job row plus, for a PROCESSING job, its chunks so far (NULL when there are none).
SELECT_JOBS = """
    SELECT jobs.*,
        CASE WHEN status = 'processing' THEN (SELECT string_agg(data, ''::bytea ORDER BY "offset") FROM job_output
            WHERE job_id = jobs.id AND stream = 1) END AS live_stdout,
        CASE WHEN status = 'processing' THEN (SELECT string_agg(data, ''::bytea ORDER BY "offset") FROM job_output
            WHERE job_id = jobs.id AND stream = 2) END AS live_stderr
    FROM jobs
"""

# The lease is held: parameters id, owner, attempt, attempt (None: any attempt).
HELD: LiteralString = "id = %s AND lease_owner = %s AND status = 'processing' AND (%s::int IS NULL OR attempts = %s)"

_APPEND = (
    """
    WITH held AS (
        SELECT id FROM jobs WHERE """
    + HELD
    + """ FOR SHARE
    ), stored AS (
        INSERT INTO job_output (job_id, stream, "offset", data)
        SELECT held.id, c.stream, c.start, c.data
        FROM held, unnest(%s::smallint[], %s::bigint[], %s::bytea[]) AS c(stream, start, data)
        ON CONFLICT DO NOTHING
    )
    SELECT count(*) AS held FROM held
"""
)

# The stream's final output from the offset on, or (one row per chunk) its chunks.
_READ = """
    SELECT jobs.account, jobs.status = 'processing' AS running,
        CASE WHEN jobs.status <> 'processing'
            THEN substring(CASE WHEN %(stream)s = 1 THEN stdout ELSE stderr END FROM %(offset)s::int + 1) END AS tail,
        o."offset", o.data
    FROM jobs LEFT JOIN LATERAL (
        SELECT "offset", data FROM job_output
        WHERE jobs.status = 'processing' AND job_id = jobs.id AND stream = %(stream)s
            AND "offset" + length(data) > %(offset)s::bigint
    ) o ON TRUE
    WHERE jobs.id = %(id)s
    ORDER BY o."offset"
"""


async def append(
    conn: Conn, job_id: int, owner: str, chunks: Sequence[OutputChunk], attempt: int | None = None
) -> bool:
    chunks = [chunk for chunk in chunks if chunk.data]
    streams, starts, datas = [int(c.stream) for c in chunks], [c.offset for c in chunks], [c.data for c in chunks]
    cursor = await conn.execute(_APPEND, (job_id, owner, attempt, attempt, streams, starts, datas))
    row = await cursor.fetchone()
    return bool(row and row["held"])


async def read(conn: Conn, job_id: int, stream: Stream, offset: int, account: str | None) -> bytes:
    offset = max(offset, 0)
    cursor = await conn.execute(_READ, {"id": job_id, "stream": int(stream), "offset": offset})
    rows = await cursor.fetchall()
    if not rows or (account is not None and rows[0]["account"] != account):
        raise NotFound(f"job {job_id} not found")
    if not rows[0]["running"]:
        return bytes(rows[0]["tail"] or b"")
    return read_from(((row["offset"], bytes(row["data"])) for row in rows if row["data"] is not None), offset)


async def keep(conn: Conn, job_ids: Sequence[int]) -> None:
    """Move the chunks into the jobs' stdout/stderr (jobs that end without an outcome)."""
    if not job_ids:
        return
    await conn.execute(
        """
        UPDATE jobs SET
            stdout = COALESCE((SELECT string_agg(data, ''::bytea ORDER BY "offset") FROM job_output
                WHERE job_id = jobs.id AND stream = 1), ''::bytea),
            stderr = COALESCE((SELECT string_agg(data, ''::bytea ORDER BY "offset") FROM job_output
                WHERE job_id = jobs.id AND stream = 2), ''::bytea)
        WHERE id = ANY(%s)
        """,
        (list(job_ids),),
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
