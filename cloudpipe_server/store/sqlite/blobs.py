"""A job's large values in the SQLite store: its stdin, and once it finished its stdout,
stderr and result, each a row of `job_blobs` (job id, kind), never in the job's own row,
whose columns of those names stay empty.

Why: SQLite keeps a row as one record, so a blob in it makes every later column of the
row sit behind the blob's overflow pages, and any UPDATE of the row rewrites the whole
record. With a 50 MiB stdin in the row, each lease extension of its running job took
189 ms (and wrote 50 MiB), 1,382 times a job without one (bench.store_blobs); out of
the row, the same as without. Empty values have no row. Every function here runs
inside the caller's transaction."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping, Sequence

from cloudpipe_server.models import Job


def put(conn: sqlite3.Connection, job_id: int, values: Mapping[str, bytes]) -> None:
    """Set these kinds of the job's values (an empty one removes its row)."""
    conn.executemany(
        "INSERT OR REPLACE INTO job_blobs (job_id, kind, data) VALUES (?, ?, ?)",
        [(job_id, kind, data) for kind, data in values.items() if data],
    )
    empty = [kind for kind, data in values.items() if not data]
    if empty:
        conn.execute(
            f"DELETE FROM job_blobs WHERE job_id = ? AND kind IN ({','.join('?' * len(empty))})", (job_id, *empty)
        )


def fill(conn: sqlite3.Connection, jobs: Sequence[Job]) -> list[Job]:
    """`jobs` (read from their rows) with their values."""
    if not jobs:
        return list(jobs)
    found: dict[int, dict[str, bytes]] = {}
    ids = [job.id for job in jobs]
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        rows = conn.execute(
            f"SELECT job_id, kind, data FROM job_blobs WHERE job_id IN ({','.join('?' * len(part))})", part
        )
        for row in rows:
            found.setdefault(row["job_id"], {})[row["kind"]] = bytes(row["data"])
    return [_with(job, found.get(job.id, {})) for job in jobs]


def _with(job: Job, values: Mapping[str, bytes]) -> Job:
    if not values:
        return job
    spec = dataclasses.replace(job.spec, stdin=values["stdin"]) if "stdin" in values else job.spec
    return dataclasses.replace(
        job,
        spec=spec,
        stdout=values.get("stdout", job.stdout),
        stderr=values.get("stderr", job.stderr),
        result=values.get("result", job.result),
    )


def tail(conn: sqlite3.Connection, job_id: int, kind: str, offset: int) -> bytes:
    """The value's bytes from `offset` on (only those are read)."""
    row = conn.execute(
        # substr() misreads huge positions; a blob is shorter than 2**31 bytes
        "SELECT substr(data, ?) AS tail FROM job_blobs WHERE job_id = ? AND kind = ?",
        (min(max(offset, 0), 2**31 - 1) + 1, job_id, kind),
    ).fetchone()
    return bytes(row["tail"]) if row is not None else b""


def clear(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Remove every value of these jobs."""
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        conn.execute(f"DELETE FROM job_blobs WHERE job_id IN ({','.join('?' * len(part))})", part)
