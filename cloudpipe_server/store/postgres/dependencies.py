"""Dependencies in the PostgreSQL job store: settling WAITING jobs.

WAITING jobs are settled (queued, or failed by a failed dependency) after every commit
that can unblock them: a submit with dependencies, finish, kills, the reaper. A write
settles only the WAITING jobs that depend on the jobs it changed (found through a
partial GIN index on `depends_on`); the reaper's periodic pass looks at every WAITING
job with a finished dependency. Settling
runs in autocommit and repeats until a pass changes nothing, so its last read starts
after all of its own writes committed; of two concurrent writers (say two dependencies
finishing together), the one committing last therefore reads both commits. Every
settling write is conditional on the job still being WAITING. Claims, finishes and
settles take no table-wide lock; a process dying between a commit and its settle pass
leaves the dependents to the next pass of anyone (the reaper runs one periodically).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cloudpipe_server.models import TERMINAL_STATUSES, JobStatus
from cloudpipe_server.store._shared import decide_settle, to_ns
from cloudpipe_server.store.postgres.database import Conn, fetch_all

# Waiting jobs that may settle: those among the given ids or depending on one of them
# (the partial GIN index on depends_on), or, for a full pass, those with a dependency
# that ended (a join on the server, not every waiting row shipped to the client).
_CANDIDATES = (
    "SELECT id, depends_on FROM jobs WHERE status = 'waiting' AND (id = ANY(%s) OR depends_on && %s::bigint[])"
    " ORDER BY id"
)
_ALL_CANDIDATES = (
    "SELECT id, depends_on FROM jobs w WHERE status = 'waiting' AND EXISTS"
    " (SELECT 1 FROM jobs d WHERE d.id = ANY(w.depends_on) AND d.status = ANY(%s)) ORDER BY id"
)
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


async def settle_waiting(conn: Conn, now: datetime, changed: Sequence[int] | None) -> None:
    """Settle the WAITING jobs among `changed` (the jobs a write changed or added) and
    those depending on them; `None` settles every WAITING job (the reaper's pass, which
    catches what a process that died before its settle left). Queues a job whose
    dependencies all ended DONE, fails one with a dependency that ended otherwise. The
    jobs settled then count as changed, until a pass changes nothing (chains).

    Runs in autocommit, never inside a transaction: see the module docstring. Rows are
    decided in id order by `_shared.decide_settle`, as in every backend; the writes then
    go out in two batches, each write conditional on the job still WAITING."""
    ids = None if changed is None else sorted(set(changed))
    while ids is None or ids:
        if ids is None:
            waiting = await fetch_all(conn, _ALL_CANDIDATES, (_TERMINAL,))
        else:
            waiting = await fetch_all(conn, _CANDIDATES, (ids, ids))
        if not waiting:
            return
        dep_ids = sorted({dep for row in waiting for dep in row["depends_on"]})
        found = await fetch_all(conn, "SELECT id, status FROM jobs WHERE id = ANY(%s)", (dep_ids,))
        statuses = {row["id"]: JobStatus(row["status"]) for row in found}
        decided = decide_settle(((row["id"], row["depends_on"]) for row in waiting), statuses)
        failures = [(to_ns(now), d.reason, d.job_id) for d in decided if d.status is JobStatus.ERROR]
        queued = [d.job_id for d in decided if d.status is JobStatus.QUEUED]
        if failures:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "UPDATE jobs SET status = 'error', finished_at = %s, reason = %s"
                    " WHERE id = %s AND status = 'waiting'",
                    failures,
                )
        if queued:
            await conn.execute("UPDATE jobs SET status = 'queued' WHERE id = ANY(%s) AND status = 'waiting'", (queued,))
        ids = [d.job_id for d in decided]
