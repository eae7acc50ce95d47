"""Ended attempts of jobs in the PostgreSQL store: one row per attempt in `job_attempts`,
the latest `ATTEMPTS_KEPT` of each job. Written in the transaction of the change that
ends the attempt (`finish`, in the statement that finishes the job: `FINISH_RECORDING`;
`reap_expired`: `record`), deleted with the job (`retention.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import LiteralString

from cloudpipe_server.models import ATTEMPTS_KEPT, Attempt
from cloudpipe_server.store._shared import attempt_from_record, attempt_values
from cloudpipe_server.store.postgres.database import Conn, fetch_all

# A second record of one attempt (none is expected: an attempt ends once) replaces the first.
_ON_CONFLICT: LiteralString = (
    " ON CONFLICT (job_id, attempt) DO UPDATE SET status = excluded.status, started_at = excluded.started_at,"
    " ended_at = excluded.ended_at, return_code = excluded.return_code, reason = excluded.reason,"
    " owner = excluded.owner"
)
_COLUMNS: LiteralString = "job_attempts (job_id, attempt, status, started_at, ended_at, return_code, reason, owner)"

# Wraps an `UPDATE jobs ... RETURNING id, attempts, status, started_at` that ends an
# attempt, recording it in the same statement; what follows the UPDATE's parameters:
# ended_at, return_code, reason, owner. The statement returns the ids updated.
FINISH_RECORDING: LiteralString = (
    "WITH ended AS ({update}), recorded AS (INSERT INTO " + _COLUMNS + " SELECT id, attempts, status, started_at,"
    " %s::bigint, %s::int, %s::text, %s::text FROM ended" + _ON_CONFLICT + ") SELECT id FROM ended"
)

_RECORD: LiteralString = (
    "INSERT INTO " + _COLUMNS + " VALUES (%(job_id)s, %(attempt)s, %(status)s, %(started_at)s::bigint,"
    " %(ended_at)s, %(return_code)s::int, %(reason)s, %(owner)s)" + _ON_CONFLICT
)
_TRIM: LiteralString = (
    "DELETE FROM job_attempts WHERE job_id = %s"
    " AND attempt <= (SELECT max(attempt) FROM job_attempts WHERE job_id = %s) - %s"
)


async def record(conn: Conn, attempt: Attempt) -> None:
    """Store `attempt` and drop the job's attempts older than the latest `ATTEMPTS_KEPT`."""
    await conn.execute(_RECORD, attempt_values(attempt))
    await trim(conn, attempt.job_id)


async def trim(conn: Conn, job_id: int) -> None:
    """Drop the job's attempts older than the latest `ATTEMPTS_KEPT`."""
    await conn.execute(_TRIM, (job_id, job_id, ATTEMPTS_KEPT))


async def read(conn: Conn, job_id: int) -> list[Attempt]:
    rows = await fetch_all(conn, "SELECT * FROM job_attempts WHERE job_id = %s ORDER BY attempt", (job_id,))
    return [attempt_from_record(row) for row in rows]


async def delete(conn: Conn, job_ids: Sequence[int]) -> None:
    """Delete the attempts of these jobs (being deleted themselves)."""
    await conn.execute("DELETE FROM job_attempts WHERE job_id = ANY(%s)", (list(job_ids),))
