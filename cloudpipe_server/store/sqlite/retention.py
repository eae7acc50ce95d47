"""Removing finished jobs in the SQLite store: `rm` of a caller's jobs and the bounded
retention batches (`JobStore.delete_finished`, `JobStore.purge`). Finished jobs have no
chunks in `job_output` (those exist only while a job runs); their dependency rows,
their attempts (`attempts.py`) and their values (`blobs.py`) go with them. Every
function here runs inside the caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from cloudpipe_server.errors import FailedPrecondition, NotFound
from cloudpipe_server.models import JobStatus
from cloudpipe_server.store._shared import decide_trim, int64, to_ns
from cloudpipe_server.store.sqlite import attempts, blobs

TERMINAL = tuple(s.value for s in JobStatus if s.terminal)
_IN_TERMINAL = f"status IN ({','.join('?' * len(TERMINAL))})"
# A finished job a WAITING job still depends on stays: the waiting job is settled by the
# statuses of its dependencies, and a missing one would fail it.
_NO_WAITING_DEPENDENT = (
    "NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs w ON w.id = d.job_id"
    " WHERE d.depends_on = jobs.id AND w.status = 'waiting')"
)


def delete_finished(conn: sqlite3.Connection, account: str, job_ids: Sequence[int]) -> list[int]:
    ids = sorted({int64(i) for i in job_ids})
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = {r["id"]: r for r in conn.execute(f"SELECT id, account, status FROM jobs WHERE id IN ({marks})", ids)}
    for job_id in ids:
        row = rows.get(job_id)
        if row is None or row["account"] != account:
            raise NotFound(f"job {job_id} not found")
        if row["status"] not in TERMINAL:
            raise FailedPrecondition(f"job {job_id} is {row['status']}: kill it first, or wait until it ends")
    needed = conn.execute(
        f"SELECT d.depends_on, d.job_id FROM job_dependencies d JOIN jobs w ON w.id = d.job_id"
        f" WHERE d.depends_on IN ({marks}) AND w.status = 'waiting' ORDER BY d.depends_on LIMIT 1",
        ids,
    ).fetchone()
    if needed is not None:
        raise FailedPrecondition(f"job {needed['depends_on']} is a dependency of waiting job {needed['job_id']}")
    _delete(conn, ids)
    return ids


def purge_jobs(conn: sqlite3.Connection, before: datetime, limit: int) -> int:
    rows = conn.execute(
        f"SELECT id FROM jobs WHERE finished_at < ? AND {_IN_TERMINAL} AND {_NO_WAITING_DEPENDENT}"
        " ORDER BY finished_at LIMIT ?",
        (to_ns(before), *TERMINAL, limit),
    )
    ids = [row["id"] for row in rows]
    _delete(conn, ids)
    return len(ids)


def purge_output(conn: sqlite3.Connection, before: datetime, limit: int) -> int:
    rows = conn.execute(
        f"SELECT id FROM jobs WHERE finished_at < ? AND {_IN_TERMINAL}"
        " AND EXISTS (SELECT 1 FROM job_blobs b WHERE b.job_id = jobs.id) ORDER BY finished_at LIMIT ?",
        (to_ns(before), *TERMINAL, limit),
    )
    ids = [row["id"] for row in rows]
    blobs.clear(conn, ids)
    return len(ids)


# A finished job's stdin, stdout, stderr and result together, from job_blobs.
_SIZED = (
    "SELECT j.account AS account, j.id AS id, j.finished_at AS finished_at, SUM(length(b.data)) AS size"
    f" FROM job_blobs b JOIN jobs j ON j.id = b.job_id WHERE j.{_IN_TERMINAL} GROUP BY b.job_id"
)


def trim_output(conn: sqlite3.Connection, budget: int, limit: int) -> int:
    over = conn.execute(
        f"SELECT account, SUM(size) AS total FROM ({_SIZED}) GROUP BY account HAVING total > ?",
        (*TERMINAL, budget),
    ).fetchall()
    if not over:
        return 0
    totals = {row["account"]: row["total"] for row in over}
    marks = ",".join("?" * len(totals))
    sized = conn.execute(
        f"SELECT account, id, size FROM ({_SIZED}) WHERE account IN ({marks}) ORDER BY account, finished_at, id",
        (*TERMINAL, *totals),
    )
    ids = decide_trim(((r["account"], r["id"], r["size"]) for r in sized), totals, budget, limit)
    blobs.clear(conn, ids)
    return len(ids)


def _delete(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    if not ids:
        return
    marks = ",".join("?" * len(ids))
    conn.execute(f"DELETE FROM job_dependencies WHERE job_id IN ({marks}) OR depends_on IN ({marks})", (*ids, *ids))
    conn.execute(f"DELETE FROM job_output WHERE job_id IN ({marks})", ids)
    blobs.clear(conn, ids)
    attempts.delete(conn, ids)
    conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
