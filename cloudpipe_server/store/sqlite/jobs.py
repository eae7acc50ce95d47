"""SQLite job store: the embedded default. One file, WAL mode, schema version in
`PRAGMA user_version` (migrations: `schema.py`).

Every operation runs in a worker thread on the backend's one connection, guarded by a
lock and shared with the schedule store (`database.SqliteDatabase`); writes use `BEGIN
IMMEDIATE`, so claims (and submits with idempotency keys) are atomic across processes
sharing the file too, and reads of several statements use `BEGIN`: one snapshot.
`synchronous=NORMAL` in WAL mode survives a crash of any process; only a power loss can
drop the last commits. The output of running jobs lives in `output.py`, dependencies in
`dependencies.py`.

Over 400 lines on purpose: `SqliteJobStore` is this backend's whole `JobStore`, kept
together so every SQLite query of a job's life (submit, claim, leases, finish, kills,
reaping, counts) reads in one place; output, dependencies, retention, identities and the
schema are already in their own modules beside it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.models import Attempt, Job, JobQuery, JobSpec, JobStatus, Outcome, OutputChunk, Stream
from cloudpipe_server.store._shared import (
    collected_to_doc,
    decide_reap,
    dedupe,
    from_ns,
    int64,
    job_from_record,
    keys_of,
    offset64,
    reaped_attempt,
    spec_to_doc,
    to_ns,
)
from cloudpipe_server.store.base import FinishedCount, JobStore, Purged
from cloudpipe_server.store.sqlite import attempts, blobs, dependencies, identity, output, retention
from cloudpipe_server.store.sqlite.database import SqliteDatabase
from cloudpipe_server.store.sqlite.quotas import WITHIN_RUNNING_LIMIT, migrate_quotas, running_limited
from cloudpipe_server.store.sqlite.schema import JOB_MIGRATIONS

_UNFINISHED = tuple(s.value for s in JobStatus if not s.terminal)


class SqliteJobStore(JobStore):
    """`JobStore` on the SQLite database `db` (one file, or ":memory:" for throwaway use),
    which the schedule store shares."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def initialize(self) -> None:
        await self._db.connect(JOB_MIGRATIONS)
        await migrate_quotas(self._db)  # the claim reads the accounts' running limits

    async def close(self) -> None:
        await self._db.close()

    # -- jobs -------------------------------------------------------------------------

    async def submit(self, account: str, specs: Sequence[JobSpec], now: datetime) -> list[int]:
        keys = keys_of(specs)

        def insert(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                f"SELECT idempotency_key, id FROM jobs WHERE account = ? AND idempotency_key <> ''"  # the partial index
                f" AND idempotency_key IN ({','.join('?' * len(keys))})",
                (account, *keys),
            )
            plan = dedupe(specs, {row["idempotency_key"]: row["id"] for row in rows} if keys else {})
            ids: list[int] = []
            for spec in plan.fresh:
                for dep in spec.depends_on:
                    row = conn.execute("SELECT account FROM jobs WHERE id = ?", (int64(dep),)).fetchone()
                    if row is None or row["account"] != account:
                        raise InvalidArgument(f"depends_on: job {dep} not found")
                status = JobStatus.WAITING if spec.depends_on else JobStatus.QUEUED
                cursor = conn.execute(
                    "INSERT INTO jobs (account, name, status, spec, depends_on, created_at, idempotency_key)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        account,
                        spec.name,
                        status.value,
                        json.dumps(spec_to_doc(spec)),
                        json.dumps(list(spec.depends_on)),
                        to_ns(now),
                        spec.idempotency_key,
                    ),
                )
                assert cursor.lastrowid is not None
                ids.append(cursor.lastrowid)
                blobs.put(conn, cursor.lastrowid, {"stdin": spec.stdin})
                dependencies.record(conn, cursor.lastrowid, spec.depends_on)
            dependencies.settle_waiting(conn, now, ids)
            return plan.ids(ids)

        return await self._db.run(insert, write=True)

    async def get(self, job_id: int, account: str | None = None, *, with_output: bool = True) -> Job:
        def read(conn: sqlite3.Connection) -> Job:
            return output.with_live_output(conn, _get(conn, job_id, account))

        if not with_output:
            return await self._db.run(lambda conn: _get(conn, job_id, account), snapshot=True)
        return await self._db.run(read, snapshot=True)

    async def attempts(self, job_id: int, account: str | None = None) -> list[Attempt]:
        def read(conn: sqlite3.Connection) -> list[Attempt]:
            _get(conn, job_id, account)
            return attempts.read(conn, job_id)

        return await self._db.run(read, snapshot=True)

    async def list_jobs(self, account: str, query: JobQuery) -> list[Job]:
        clauses = ["account = ?"]
        params: list[Any] = [account]
        for column, values in (("id", query.ids), ("name", query.names)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(int64(v) if isinstance(v, int) else v for v in values)
        if query.statuses:
            clauses.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params.extend(s.value for s in query.statuses)
        if query.after_id:
            clauses.append("id >= ?")
            params.append(int64(query.after_id))
        if query.before_id:
            clauses.append("id < ?")
            params.append(int64(query.before_id))
        if query.created_after is not None:
            clauses.append("created_at >= ?")
            params.append(to_ns(query.created_after))
        if query.created_before is not None:
            clauses.append("created_at < ?")
            params.append(to_ns(query.created_before))
        order = "DESC" if query.newest_first else "ASC"
        where = f"FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id {order} LIMIT ?"
        params.append(query.limit)

        def read(conn: sqlite3.Connection) -> list[Job]:
            jobs = [_row_to_job(row) for row in conn.execute(f"SELECT * {where}", params)]
            return blobs.fill(conn, jobs) if query.with_output else jobs

        return await self._db.run(read, snapshot=query.with_output)

    async def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int, per_account_limit: int = 0
    ) -> list[Job]:
        def claim(conn: sqlite3.Connection) -> list[Job]:
            due = "SELECT id FROM jobs WHERE status = 'queued' AND (run_after IS NULL OR run_after <= ?)"
            args: tuple[object, ...] = (to_ns(now),)
            if running_limited(conn, per_account_limit):
                due, args = WITHIN_RUNNING_LIMIT, (to_ns(now), per_account_limit, per_account_limit)
            rows = conn.execute(
                "UPDATE jobs SET status = 'processing', lease_owner = ?, lease_expires_at = ?,"
                " attempts = attempts + 1, started_at = ?, container_started_at = NULL,"
                f" container_id = '' WHERE id IN ({due} ORDER BY id LIMIT ?) RETURNING *",
                (owner, to_ns(now + lease), to_ns(now), *args, limit),
            ).fetchall()
            return blobs.fill(conn, sorted((_row_to_job(row) for row in rows), key=lambda job: job.id))

        return await self._db.run(claim, write=True)

    async def owned(self, owner: str) -> list[Job]:
        def read(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE status = 'processing' AND lease_owner = ? ORDER BY id", (owner,)
            ).fetchall()
            return [output.with_live_output(conn, job) for job in blobs.fill(conn, [_row_to_job(row) for row in rows])]

        return await self._db.run(read, snapshot=True)

    async def append_output(
        self, job_id: int, owner: str, chunks: Sequence[OutputChunk], *, attempt: int | None = None
    ) -> bool:
        return await self._db.run(lambda conn: output.append(conn, job_id, owner, chunks, attempt), write=True)

    async def read_output(self, job_id: int, stream: Stream, offset: int, account: str | None = None) -> bytes:
        job_id, offset = int64(job_id), offset64(offset)
        return await self._db.run(lambda conn: output.read(conn, job_id, stream, offset, account), snapshot=True)

    async def extend_leases(
        self, owner: str, job_ids: Sequence[int], until: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> set[int]:
        if not job_ids:
            return set()
        wanted = attempts or {}

        def extend(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                f"SELECT id, attempts FROM jobs WHERE lease_owner = ? AND status = 'processing'"
                f" AND id IN ({','.join('?' * len(job_ids))})",
                (owner, *job_ids),
            ).fetchall()
            held = [row["id"] for row in rows if wanted.get(row["id"], row["attempts"]) == row["attempts"]]
            conn.executemany("UPDATE jobs SET lease_expires_at = ? WHERE id = ?", [(to_ns(until), i) for i in held])
            return set(held)

        return await self._db.run(extend, write=True)

    async def mark_started(
        self,
        job_id: int,
        owner: str,
        container_id: str,
        container_started_at: datetime,
        *,
        attempt: int | None = None,
    ) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"UPDATE jobs SET container_id = ?, container_started_at = ? WHERE {output.HELD}",
                (container_id, to_ns(container_started_at), job_id, owner, attempt, attempt),
            )

        await self._db.run(update, write=True)

    async def finish(self, job_id: int, owner: str, outcome: Outcome, *, attempt: int | None = None) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                f"SELECT kill_requested, attempts, started_at FROM jobs WHERE {output.HELD}",
                (job_id, owner, attempt, attempt),
            ).fetchone()
            if row is None:
                return False
            status = outcome.status
            if row["kill_requested"] and status is JobStatus.ERROR:
                status = JobStatus.KILLED
            conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, reason = ?, return_code = ?,"
                " collected = ?, lease_owner = '', lease_expires_at = NULL WHERE id = ?",
                (
                    status.value,
                    to_ns(outcome.finished_at),
                    outcome.reason,
                    outcome.return_code,
                    json.dumps(collected_to_doc(outcome.collected)),
                    job_id,
                ),
            )
            blobs.put(conn, job_id, {"stdout": outcome.stdout, "stderr": outcome.stderr, "result": outcome.result})
            ended = Attempt(
                job_id=job_id,
                number=row["attempts"],
                status=status,
                ended_at=outcome.finished_at,
                started_at=from_ns(row["started_at"]),
                return_code=outcome.return_code,
                reason=outcome.reason,
                owner=owner,
            )
            attempts.record(conn, ended)
            output.discard(conn, job_id)
            dependencies.settle_waiting(conn, outcome.finished_at, [job_id])
            return True

        return await self._db.run(update, write=True)

    async def unclaim(self, job_id: int, owner: str, now: datetime, reason: str, *, attempt: int | None = None) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                f"UPDATE jobs SET {_UNCLAIMED} WHERE {output.HELD} RETURNING kill_requested",
                (reason, job_id, owner, attempt, attempt),
            ).fetchone()
            if row is None:
                return False
            output.discard(conn, job_id)
            if row["kill_requested"]:
                _kill(conn, [job_id], now)
                dependencies.settle_waiting(conn, now, [job_id])
            return True

        return await self._db.run(update, write=True)

    async def request_kill(self, job_id: int, account: str, now: datetime) -> Job:
        def update(conn: sqlite3.Connection) -> Job:
            job = _get(conn, job_id, account)
            if job.status.terminal:
                return job
            _kill(conn, [job_id], now)
            dependencies.settle_waiting(conn, now, [job_id])
            return _get(conn, job_id, account)

        return await self._db.run(update, write=True)

    async def kill_all(self, account: str, now: datetime) -> list[int]:
        def update(conn: sqlite3.Connection) -> list[int]:
            ids = [
                row["id"]
                for row in conn.execute(
                    f"SELECT id FROM jobs WHERE account = ? AND status IN ({','.join('?' * len(_UNFINISHED))})"
                    " ORDER BY id",
                    (account, *_UNFINISHED),
                )
            ]
            _kill(conn, ids, now)
            dependencies.settle_waiting(conn, now, ids)
            return ids

        return await self._db.run(update, write=True)

    async def kill_requested(self, job_ids: Sequence[int]) -> set[int]:
        if not job_ids:
            return set()

        def read(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                f"SELECT id FROM jobs WHERE kill_requested = 1 AND status = 'processing'"
                f" AND id IN ({','.join('?' * len(job_ids))})",
                tuple(map(int64, job_ids)),
            )
            return {row["id"] for row in rows}

        return await self._db.run(read)

    async def unfinished_accounts(self, after: str, limit: int) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                f"SELECT DISTINCT account FROM jobs WHERE status IN ({','.join('?' * len(_UNFINISHED))})"
                " AND account > ? ORDER BY account LIMIT ?",
                (*_UNFINISHED, after, limit),
            )
            return [row["account"] for row in rows]

        return await self._db.run(read)

    async def counts(self, account: str) -> dict[JobStatus, int]:
        def read(conn: sqlite3.Connection) -> dict[JobStatus, int]:
            counts = {status: 0 for status in JobStatus}
            rows = conn.execute("SELECT status, COUNT(*) AS n FROM jobs WHERE account = ? GROUP BY status", (account,))
            for row in rows:
                counts[JobStatus(row["status"])] = row["n"]
            return counts

        return await self._db.run(read)

    async def counts_by_account(self) -> dict[str, dict[JobStatus, int]]:
        def read(conn: sqlite3.Connection) -> dict[str, dict[JobStatus, int]]:
            found: dict[str, dict[JobStatus, int]] = {}
            for row in conn.execute("SELECT account, status, COUNT(*) AS n FROM jobs GROUP BY account, status"):
                found.setdefault(row["account"], {status: 0 for status in JobStatus})[JobStatus(row["status"])] = row[
                    "n"
                ]
            return found

        return await self._db.run(read)

    async def finished_since(self, since: datetime, account: str | None = None) -> list[FinishedCount]:
        start = to_ns(since)

        def read(conn: sqlite3.Connection) -> list[FinishedCount]:
            where = "finished_at >= ?"
            args: list[object] = [start, start]
            if account is not None:
                where += " AND account = ?"
                args.append(account)
            rows = conn.execute(
                "SELECT account, status, (finished_at - ?) / 60000000000 AS minute, COUNT(*) AS n,"
                " COALESCE(SUM(CASE WHEN started_at IS NULL THEN 0 ELSE finished_at - started_at END), 0) AS runtime"
                f" FROM jobs WHERE {where} GROUP BY account, status, minute",
                args,
            )
            return [
                FinishedCount(r["account"], int(r["minute"]), JobStatus(r["status"]), r["n"], int(r["runtime"]))
                for r in rows
            ]

        return await self._db.run(read)

    async def reap_expired(self, now: datetime, max_attempts: int) -> list[Job]:
        def reap(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE status = 'processing' AND lease_expires_at < ? ORDER BY id",
                (to_ns(now),),
            ).fetchall()
            reaped: list[int] = []
            for row in rows:
                job = _row_to_job(row)
                decision = decide_reap(job, now, max_attempts)
                if decision.requeued:
                    conn.execute(
                        "UPDATE jobs SET status = 'queued', lease_owner = '', lease_expires_at = NULL,"
                        " run_after = ?, reason = ? WHERE id = ?",
                        (to_ns(decision.run_after), decision.reason, job.id),
                    )
                    output.discard(conn, job.id)
                else:
                    conn.execute(
                        "UPDATE jobs SET status = ?, finished_at = ?, lease_owner = '', lease_expires_at = NULL,"
                        " reason = ? WHERE id = ?",
                        (decision.status.value, to_ns(now), decision.reason, job.id),
                    )
                    output.keep(conn, job.id)
                attempts.record(conn, reaped_attempt(job, decision, now))
                reaped.append(job.id)
            dependencies.settle_waiting(conn, now, reaped)
            return [_get(conn, job_id, None) for job_id in reaped]

        return await self._db.run(reap, write=True)

    # -- removal ----------------------------------------------------------------------

    async def delete_finished(self, account: str, job_ids: Sequence[int]) -> list[int]:
        return await self._db.run(lambda conn: retention.delete_finished(conn, account, job_ids), write=True)

    async def purge(self, output_before: datetime | None, jobs_before: datetime | None, limit: int) -> Purged:
        def purge(conn: sqlite3.Connection) -> Purged:
            jobs = retention.purge_jobs(conn, jobs_before, limit) if jobs_before is not None else 0
            outputs = retention.purge_output(conn, output_before, limit) if output_before is not None else 0
            return Purged(jobs, outputs)

        return await self._db.run(purge, write=True)

    async def trim_output(self, account_bytes: int, limit: int) -> int:
        return await self._db.run(lambda conn: retention.trim_output(conn, account_bytes, limit), write=True)

    # -- server identities ------------------------------------------------------------

    async def hold_identity(
        self, server_id: str, holder: str, now: datetime, until: datetime, *, replacing: str = ""
    ) -> str:
        now_ns, until_ns = to_ns(now) or 0, to_ns(until) or 0
        return await self._db.run(
            lambda conn: identity.hold(conn, server_id, holder, now_ns, until_ns, replacing), write=True
        )

    async def release_identity(self, server_id: str, holder: str) -> None:
        await self._db.run(lambda conn: identity.release(conn, server_id, holder), write=True)


# -- helpers run inside a transaction ------------------------------------------------------


def _get(conn: sqlite3.Connection, job_id: int, account: str | None) -> Job:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (int64(job_id),)).fetchone()
    if row is None or (account is not None and row["account"] != account):
        raise NotFound(f"job {job_id} not found")
    return blobs.fill(conn, [_row_to_job(row)])[0]


_UNCLAIMED = (
    "status = 'queued', attempts = attempts - 1, lease_owner = '', lease_expires_at = NULL, started_at = NULL,"
    " container_id = '', container_started_at = NULL, reason = ?"
)


def _kill(conn: sqlite3.Connection, job_ids: Sequence[int], now: datetime) -> None:
    """Flag a kill; jobs that never started end KILLED here and now."""
    for job_id in job_ids:
        conn.execute(
            "UPDATE jobs SET kill_requested = 1 WHERE id = ? AND status NOT IN ('done','error','killed','stalled')",
            (job_id,),
        )
        conn.execute(
            "UPDATE jobs SET status = 'killed', finished_at = ?, reason = 'killed before it started'"
            " WHERE id = ? AND status IN ('waiting', 'queued')",
            (to_ns(now), job_id),
        )


def _row_to_job(row: sqlite3.Row) -> Job:
    collected = json.loads(row["collected"]) if row["collected"] else None
    return job_from_record(row, json.loads(row["spec"]), collected)
