"""Output of running jobs in the SQLite store: chunks in `job_output`, one row per
appended chunk, so an append writes only its own bytes. A stream's chunks never overlap
(an append stores only what goes beyond the stream's stored end, `_shared.unstored`),
and reads stop at the first gap (`_shared.read_from`). Chunks exist only while a job
is PROCESSING: `finish` replaces them by the outcome's output, the reaper discards them
(requeue) or moves them into the job's stdout and stderr (stall; `blobs.py`). Every
function here runs inside the caller's transaction (`SqliteDatabase.run`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from cloudpipe_server.errors import NotFound
from cloudpipe_server.models import Job, JobStatus, OutputChunk, Stream
from cloudpipe_server.store._shared import read_from, unstored
from cloudpipe_server.store.sqlite import blobs

# The lease is held: parameters id, owner, attempt, attempt (None: any attempt).
HELD = "id = ? AND lease_owner = ? AND status = 'processing' AND (? IS NULL OR attempts = ?)"


def append(
    conn: sqlite3.Connection, job_id: int, owner: str, chunks: Sequence[OutputChunk], attempt: int | None = None
) -> bool:
    if conn.execute(f"SELECT 1 FROM jobs WHERE {HELD}", (job_id, owner, attempt, attempt)).fetchone() is None:
        return False
    ends: dict[int, int] = {}
    for stream in {int(chunk.stream) for chunk in chunks}:
        last = conn.execute(
            'SELECT "offset" + length(data) AS stop FROM job_output WHERE job_id = ? AND stream = ?'
            ' ORDER BY "offset" DESC LIMIT 1',
            (job_id, stream),
        ).fetchone()
        ends[stream] = last["stop"] if last else 0
    conn.executemany(
        'INSERT OR IGNORE INTO job_output (job_id, stream, "offset", data) VALUES (?, ?, ?, ?)',
        [(job_id, int(chunk.stream), chunk.offset, chunk.data) for chunk in unstored(chunks, ends)],
    )
    return True


def stream_from(conn: sqlite3.Connection, job_id: int, stream: Stream, offset: int) -> bytes:
    """The stored chunks of one stream, from `offset` on, up to its first gap. Every
    chunk's extent is read (length() reads no blob), the bytes only from `offset` on."""
    rows = conn.execute(
        'SELECT "offset", length(data) AS n, CASE WHEN "offset" + length(data) > ? THEN data END AS data'
        ' FROM job_output WHERE job_id = ? AND stream = ? ORDER BY "offset"',
        (offset, job_id, int(stream)),
    )
    return read_from(((row["offset"], row["n"], row["data"]) for row in rows), offset)


def with_live_output(conn: sqlite3.Connection, job: Job) -> Job:
    """`job`, with the output appended so far when it is PROCESSING."""
    if job.status is JobStatus.PROCESSING:
        job.stdout = stream_from(conn, job.id, Stream.STDOUT, 0)
        job.stderr = stream_from(conn, job.id, Stream.STDERR, 0)
    return job


def read(conn: sqlite3.Connection, job_id: int, stream: Stream, offset: int, account: str | None) -> bytes:
    offset = max(offset, 0)
    found = conn.execute("SELECT account, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if found is None or (account is not None and found["account"] != account):
        raise NotFound(f"job {job_id} not found")
    if found["status"] == JobStatus.PROCESSING.value:
        return stream_from(conn, job_id, stream, offset)
    return blobs.tail(conn, job_id, "stdout" if stream is Stream.STDOUT else "stderr", offset)


def keep(conn: sqlite3.Connection, job_id: int) -> None:
    """Move the chunks into the job's stdout/stderr (a job that ends without an outcome)."""
    blobs.put(
        conn,
        job_id,
        {"stdout": stream_from(conn, job_id, Stream.STDOUT, 0), "stderr": stream_from(conn, job_id, Stream.STDERR, 0)},
    )
    discard(conn, job_id)


def discard(conn: sqlite3.Connection, job_id: int) -> None:
    conn.execute("DELETE FROM job_output WHERE job_id = ?", (job_id,))
