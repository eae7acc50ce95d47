"""Removing finished jobs in the SQLite store: `rm` of a caller's jobs and the bounded
retention batches (`JobStore.delete_finished`, `JobStore.purge`). Finished jobs have no
chunks in `job_output` (those exist only while a job runs); their dependency rows and
their attempts (`attempts.py`) go with them. Every function here runs inside the
caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from cloudpipe_server.errors import FailedPrecondition, NotFound
from cloudpipe_server.models import JobStatus
from cloudpipe_server.store._shared import decide_trim, int64, to_ns
from cloudpipe_server.store.sqlite import attempts

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
    cursor = conn.execute(
        "UPDATE jobs SET stdout = x'', stderr = x'', result = x'', stdin = x'' WHERE id IN ("
        f" SELECT id FROM jobs WHERE finished_at < ? AND {_IN_TERMINAL}"
        " AND (length(stdout) > 0 OR length(stderr) > 0 OR length(result) > 0 OR length(stdin) > 0)"
        " ORDER BY finished_at LIMIT ?)",
        (to_ns(before), *TERMINAL, limit),
    )
    return cursor.rowcount


_SIZE = "(length(stdout) + length(stderr) + length(result) + length(stdin))"


def trim_output(conn: sqlite3.Connection, budget: int, limit: int) -> int:
    over = conn.execute(
        f"SELECT account, SUM({_SIZE}) AS total FROM jobs WHERE {_IN_TERMINAL} GROUP BY account HAVING total > ?",
        (*TERMINAL, budget),
    ).fetchall()
    if not over:
        return 0
    totals = {row["account"]: row["total"] for row in over}
    marks = ",".join("?" * len(totals))
    sized = conn.execute(
        f"SELECT account, id, {_SIZE} AS size FROM jobs WHERE account IN ({marks}) AND {_IN_TERMINAL}"
        f" AND {_SIZE} > 0 ORDER BY account, finished_at, id",
        (*totals, *TERMINAL),
    )
    ids = decide_trim(((r["account"], r["id"], r["size"]) for r in sized), totals, budget, limit)
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        conn.execute(
            f"UPDATE jobs SET stdout = x'', stderr = x'', result = x'', stdin = x''"
            f" WHERE id IN ({','.join('?' * len(part))})",
            part,
        )
    return len(ids)


def _delete(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    if not ids:
        return
    marks = ",".join("?" * len(ids))
    conn.execute(f"DELETE FROM job_dependencies WHERE job_id IN ({marks}) OR depends_on IN ({marks})", (*ids, *ids))
    conn.execute(f"DELETE FROM job_output WHERE job_id IN ({marks})", ids)
    attempts.delete(conn, ids)
    conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
