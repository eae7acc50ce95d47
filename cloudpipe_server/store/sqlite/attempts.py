"""Ended attempts of jobs in the SQLite store: one row per attempt in `job_attempts`,
the latest `ATTEMPTS_KEPT` of each job. Written by the change that ends the attempt
(`finish`, `reap_expired`), deleted with the job (`retention.py`). Every function here
runs inside the caller's transaction (`SqliteDatabase.run`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from cloudpipe_server.models import ATTEMPTS_KEPT, Attempt
from cloudpipe_server.store._shared import attempt_from_record, attempt_values

# A second record of one attempt (none is expected: an attempt ends once) replaces the first.
_RECORD = """
    INSERT INTO job_attempts (job_id, attempt, status, started_at, ended_at, return_code, reason, owner)
    VALUES (:job_id, :attempt, :status, :started_at, :ended_at, :return_code, :reason, :owner)
    ON CONFLICT (job_id, attempt) DO UPDATE SET status = excluded.status, started_at = excluded.started_at,
        ended_at = excluded.ended_at, return_code = excluded.return_code, reason = excluded.reason,
        owner = excluded.owner
"""


def record(conn: sqlite3.Connection, attempt: Attempt) -> None:
    """Store `attempt` and drop the job's attempts older than the latest `ATTEMPTS_KEPT`."""
    conn.execute(_RECORD, attempt_values(attempt))
    conn.execute(
        "DELETE FROM job_attempts WHERE job_id = ? AND attempt <= ?", (attempt.job_id, attempt.number - ATTEMPTS_KEPT)
    )


def read(conn: sqlite3.Connection, job_id: int) -> list[Attempt]:
    rows = conn.execute("SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt", (job_id,))
    return [attempt_from_record(row) for row in rows]


def delete(conn: sqlite3.Connection, job_ids: Sequence[int]) -> None:
    """Delete the attempts of these jobs (being deleted themselves)."""
    for start in range(0, len(job_ids), 500):
        part = job_ids[start : start + 500]
        conn.execute(f"DELETE FROM job_attempts WHERE job_id IN ({','.join('?' * len(part))})", part)
