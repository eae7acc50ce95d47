"""Removing finished jobs in the PostgreSQL store: `rm` of a caller's jobs and the
bounded retention batches (`JobStore.delete_finished`, `JobStore.purge`). Each runs in
one transaction; retention batches lock their rows with SKIP LOCKED, so servers sharing
the store purge different jobs at once. A finished job a WAITING job still depends on
stays (the waiting job is settled by its dependencies' statuses). A job's attempts
(`attempts.py`) are deleted with it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cloudpipe_server.errors import FailedPrecondition, NotFound
from cloudpipe_server.models import TERMINAL_STATUSES
from cloudpipe_server.store._shared import decide_trim, int64, to_ns
from cloudpipe_server.store.postgres import attempts
from cloudpipe_server.store.postgres.database import Conn, fetch_all, fetch_one

_TERMINAL = [s.value for s in TERMINAL_STATUSES]
_NO_WAITING_DEPENDENT = (
    "NOT EXISTS (SELECT 1 FROM jobs w WHERE w.status = 'waiting' AND w.depends_on @> ARRAY[j.id]::bigint[])"
)


async def delete_finished(conn: Conn, account: str, job_ids: Sequence[int]) -> list[int]:
    ids = sorted({int64(i) for i in job_ids})
    if not ids:
        return []
    async with conn.transaction():
        rows = await fetch_all(conn, "SELECT id, account, status FROM jobs WHERE id = ANY(%s) FOR UPDATE", (ids,))
        found = {row["id"]: row for row in rows}
        for job_id in ids:
            row = found.get(job_id)
            if row is None or row["account"] != account:
                raise NotFound(f"job {job_id} not found")
            if row["status"] not in _TERMINAL:
                raise FailedPrecondition(f"job {job_id} is {row['status']}: kill it first, or wait until it ends")
        needed = await fetch_one(
            conn,
            "SELECT d AS depends_on, w.id AS job_id FROM jobs w, unnest(w.depends_on) d"
            " WHERE w.status = 'waiting' AND w.depends_on && %s::bigint[] AND d = ANY(%s) ORDER BY d LIMIT 1",
            (ids, ids),
        )
        if needed is not None:
            raise FailedPrecondition(f"job {needed['depends_on']} is a dependency of waiting job {needed['job_id']}")
        await _delete(conn, ids)
    return ids


async def purge_jobs(conn: Conn, before: datetime, limit: int) -> int:
    async with conn.transaction():
        rows = await fetch_all(
            conn,
            f"SELECT id FROM jobs j WHERE finished_at < %s AND status = ANY(%s) AND {_NO_WAITING_DEPENDENT}"
            " ORDER BY finished_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (to_ns(before), _TERMINAL, limit),
        )
        ids = [row["id"] for row in rows]
        await _delete(conn, ids)
    return len(ids)


async def purge_output(conn: Conn, before: datetime, limit: int) -> int:
    async with conn.transaction():
        rows = await fetch_all(
            conn,
            "UPDATE jobs SET stdout = '', stderr = '', result = '', stdin = '' WHERE id IN ("
            " SELECT id FROM jobs WHERE finished_at < %s AND status = ANY(%s) AND (octet_length(stdout) > 0"
            " OR octet_length(stderr) > 0 OR octet_length(result) > 0 OR octet_length(stdin) > 0)"
            " ORDER BY finished_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
            (to_ns(before), _TERMINAL, limit),
        )
    return len(rows)


_SIZE = "(octet_length(stdout) + octet_length(stderr) + octet_length(result) + octet_length(stdin))"
_TRIM_LOCK = 0x636C6F7564706970  # servers trimming at once would each free the same excess


async def trim_output(conn: Conn, budget: int, limit: int) -> int:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_TRIM_LOCK,))
        over = await fetch_all(
            conn,
            f"SELECT account, SUM({_SIZE}) AS total FROM jobs WHERE status = ANY(%s)"
            f" GROUP BY account HAVING SUM({_SIZE}) > %s",
            (_TERMINAL, budget),
        )
        if not over:
            return 0
        totals = {row["account"]: int(row["total"]) for row in over}
        sized = await fetch_all(
            conn,
            f"SELECT account, id, {_SIZE} AS size FROM jobs WHERE account = ANY(%s) AND status = ANY(%s)"
            f" AND {_SIZE} > 0 ORDER BY account, finished_at, id",
            (list(totals), _TERMINAL),
        )
        ids = decide_trim(((r["account"], r["id"], int(r["size"])) for r in sized), totals, budget, limit)
        if ids:
            await conn.execute(
                "UPDATE jobs SET stdout = '', stderr = '', result = '', stdin = '' WHERE id = ANY(%s)", (ids,)
            )
    return len(ids)


async def _delete(conn: Conn, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute("DELETE FROM job_output WHERE job_id = ANY(%s)", (list(ids),))
        await attempts.delete(conn, ids)
        await conn.execute("DELETE FROM jobs WHERE id = ANY(%s)", (list(ids),))
