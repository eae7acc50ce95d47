"""Dependencies in the PostgreSQL job store: settling WAITING jobs.

WAITING jobs are settled (queued, or failed by a failed dependency) after every commit
that can unblock them: a submit with dependencies, finish, kills, the reaper. Settling
runs in autocommit and repeats until a pass changes nothing, so its last read starts
after all of its own writes committed; of two concurrent writers (say two dependencies
finishing together), the one committing last therefore reads both commits. Every
settling write is conditional on the job still being WAITING. Claims, finishes and
settles take no table-wide lock; a process dying between a commit and its settle pass
leaves the dependents to the next pass of anyone (the reaper runs one periodically).
"""

from __future__ import annotations

from datetime import datetime

from cloudpipe_server.models import JobStatus
from cloudpipe_server.store.codec import to_ns
from cloudpipe_server.store.common import decide_settle
from cloudpipe_server.store.postgres_db import Conn, fetch_all


async def settle_waiting(conn: Conn, now: datetime) -> None:
    """Queue WAITING jobs whose dependencies all ended DONE; fail those with a
    dependency that ended otherwise. Repeats until nothing changes (chains).

    Runs in autocommit, never inside a transaction: see the module docstring. Rows are
    decided in id order by `common.decide_settle`, as in every backend; the writes then
    go out in two batches, each write conditional on the job still WAITING."""
    changed = True
    while changed:
        waiting = await fetch_all(conn, "SELECT id, depends_on FROM jobs WHERE status = 'waiting' ORDER BY id")
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
        changed = bool(failures or queued)
