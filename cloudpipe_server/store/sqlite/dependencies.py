"""Dependencies in the SQLite job store: who waits for whom, and settling WAITING jobs.

`job_dependencies` (depends_on, job_id) is the reverse of each job's `depends_on`, filled
on submit (and, for the jobs that waited when it was added, by its migration in
`schema.py`), so a write settles only the WAITING jobs that depend on the jobs it
changed, not every WAITING job. Settling runs inside the write's own transaction: nothing is ever missed.
Every function here runs inside the caller's transaction (`SqliteDatabase.run`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

from cloudpipe_server.models import JobStatus
from cloudpipe_server.store._shared import decide_settle, to_ns

# WAITING jobs among the given ids (a JSON array) or depending on one of them, in id order.
_CANDIDATES = """
    SELECT id, depends_on FROM jobs WHERE status = 'waiting' AND id IN (
        SELECT value FROM json_each(:ids)
        UNION SELECT job_id FROM job_dependencies WHERE depends_on IN (SELECT value FROM json_each(:ids))
    ) ORDER BY id
"""


def record(conn: sqlite3.Connection, job_id: int, depends_on: Sequence[int]) -> None:
    """Note a new job's dependencies."""
    conn.executemany(
        "INSERT OR IGNORE INTO job_dependencies (depends_on, job_id) VALUES (?, ?)",
        [(dep, job_id) for dep in depends_on],
    )


def settle_waiting(conn: sqlite3.Connection, now: datetime, changed: Iterable[int]) -> None:
    """Settle the WAITING jobs among `changed` (the jobs a write changed or added) and
    those depending on them: queue a job whose dependencies all ended DONE, fail one
    with a dependency that ended otherwise (`_shared.decide_settle`). The jobs settled
    then count as changed, until nothing changes (chains)."""
    ids = sorted(set(changed))
    while ids:
        waiting = [
            (row["id"], json.loads(row["depends_on"])) for row in conn.execute(_CANDIDATES, {"ids": json.dumps(ids)})
        ]
        deps = sorted({dep for _, job_deps in waiting for dep in job_deps})
        rows = conn.execute(
            "SELECT id, status FROM jobs WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(deps),)
        )
        statuses = {row["id"]: JobStatus(row["status"]) for row in rows}
        decided = decide_settle(waiting, statuses)
        conn.executemany(
            "UPDATE jobs SET status = ?, finished_at = ?, reason = ? WHERE id = ?",
            [(s.status.value, to_ns(now) if s.status.terminal else None, s.reason, s.job_id) for s in decided],
        )
        ids = [s.job_id for s in decided]
