"""PostgreSQL job store (psycopg 3, async, one connection pool).

Claims are one statement: `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`,
so concurrent dispatchers skip each other's rows instead of queueing behind them.

Schema migrations are the short list `JOB_MIGRATIONS` (`schema.py`), applied by
`initialize()` in one transaction that first takes `pg_advisory_xact_lock`, with the
applied version in a `schema_version` table (`database.py`: the one pool, migrations
and error mapping, shared with the schedule store).

`_SUBMIT_LOCK`, a second transaction-scoped advisory lock, serialises submits: the ids
of one submit are consecutive, and a job becomes visible only after every job with a
smaller id (`after_id` paging never skips a late-committing job). Ids can have gaps:
a failed submit burns its ids. A submit without dependencies or idempotency keys is one
statement; one with keys looks them up in a transaction holding the lock, so a key is
never inserted twice (the partial unique index on (account, idempotency_key) backs that).

WAITING jobs are settled (queued, or failed by a failed dependency) after every commit
that can unblock them: a submit with dependencies, finish, kills, the reaper; how that
stays correct under concurrent writers: `dependencies.py`.

Output of running jobs: `output.py`.

Over 400 lines on purpose: `PostgresJobStore` is this backend's whole `JobStore`, kept
together so every PostgreSQL query of a job's life (submit, claim, leases, finish, kills,
reaping, counts) reads in one place; output, dependencies, retention, identities and the
schema are already in their own modules beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import LiteralString

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.models import (
    TERMINAL_STATUSES,
    Attempt,
    Job,
    JobQuery,
    JobSpec,
    JobStatus,
    Outcome,
    OutputChunk,
    Stream,
)
from cloudpipe_server.store._shared import (
    OUTPUT_COLUMNS,
    attempt_reason,
    collected_to_doc,
    decide_reap,
    dedupe,
    int64,
    job_from_record,
    keys_of,
    offset64,
    reaped_attempt,
    spec_to_doc,
    to_ns,
)
from cloudpipe_server.store.base import FinishedCount, JobStore, Purged
from cloudpipe_server.store.postgres import attempts, identity, output, retention
from cloudpipe_server.store.postgres.database import Conn, PostgresDatabase, advisory_lock, fetch_all, fetch_one
from cloudpipe_server.store.postgres.dependencies import settle_waiting
from cloudpipe_server.store.postgres.output import SELECT_JOBS
from cloudpipe_server.store.postgres.quotas import DUE_WITHIN_RUNNING_LIMIT, migrate_quotas, running_limited
from cloudpipe_server.store.postgres.schema import JOB_MIGRATIONS, JOB_VERSION_TABLE, MIGRATE_LOCK

# Key of the transaction-scoped advisory lock of submits (any constant unique to Cloudpipe).
_SUBMIT_LOCK = 0x436C_6F75_6400_0002
_CLAIM_LOCK = 0x436C_6F75_6400_0005

_CLAIM = (
    "UPDATE jobs SET status = 'processing', lease_owner = %s, lease_expires_at = %s,"
    " attempts = attempts + 1, started_at = %s, container_started_at = NULL, container_id = ''"
)
_DUE = (
    " WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND (run_after IS NULL OR run_after <= %s)"
    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *"
)

# Parameters: whether the outcome is ERROR, its status, finished_at, reason, return_code,
# stdout, stderr, result, collected, the lease (`output.HELD`), then the attempt's
# (`attempts.FINISH_RECORDING`). Returns the id when the lease was held.
_FINISH = attempts.FINISH_RECORDING.format(
    update="UPDATE jobs SET status = CASE WHEN kill_requested AND %s THEN 'killed' ELSE %s END,"
    " finished_at = %s, reason = %s, return_code = %s, stdout = %s, stderr = %s, result = %s,"
    " collected = %s, lease_owner = '', lease_expires_at = NULL WHERE "
    + output.HELD
    + " RETURNING id, attempts, status, started_at"
)

_UNFINISHED = [s.value for s in JobStatus if not s.terminal]
_TERMINAL = [s.value for s in TERMINAL_STATUSES]

# Jobs without dependencies in one autocommit statement: the lock is taken before the
# first row draws its id, and held until the statement commits. Ids follow the rows' order.
# (Also run inside the locked transaction: the lock is re-entrant.)
_INSERT_QUEUED = """
    WITH submit_lock AS (SELECT pg_advisory_xact_lock(%s))
    INSERT INTO jobs (account, name, status, spec, stdin, created_at, idempotency_key)
    SELECT %s, j.name, 'queued', j.spec, j.stdin, %s, j.key
    FROM submit_lock,
        unnest(%s::text[], %s::jsonb[], %s::bytea[], %s::text[]) WITH ORDINALITY AS j(name, spec, stdin, key, n)
    ORDER BY j.n RETURNING id
"""
_INSERT_ONE = (
    "INSERT INTO jobs (account, name, status, spec, stdin, depends_on, created_at, idempotency_key)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)


class PostgresJobStore(JobStore):
    """`JobStore` on the PostgreSQL database `db`, whose pool the schedule store shares."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._summary_columns = ""  # read from the catalog once, by the first summary list

    async def initialize(self) -> None:
        await self._db.connect(JOB_MIGRATIONS, version_table=JOB_VERSION_TABLE, lock=MIGRATE_LOCK)
        await migrate_quotas(self._db)  # the claim reads the accounts' running limits

    async def close(self) -> None:
        await self._db.close()

    # -- jobs -------------------------------------------------------------------------

    async def submit(self, account: str, specs: Sequence[JobSpec], now: datetime) -> list[int]:
        if not specs:
            return []
        keys = keys_of(specs)
        if not keys and not any(spec.depends_on for spec in specs):
            async with self._db.connection() as conn:
                return await _insert_queued(conn, account, specs, now)
        async with self._db.connection() as conn:
            async with conn.transaction():
                await advisory_lock(conn, _SUBMIT_LOCK)
                rows = await fetch_all(
                    conn,
                    "SELECT idempotency_key, id FROM jobs WHERE account = %s AND idempotency_key = ANY(%s)"
                    " AND idempotency_key <> ''",  # lets even a generic plan use the partial index
                    (account, keys),
                )
                plan = dedupe(specs, {row["idempotency_key"]: row["id"] for row in rows})
                waiting = any(spec.depends_on for spec in plan.fresh)
                if plan.fresh and not waiting:
                    ids = await _insert_queued(conn, account, plan.fresh, now)
                else:
                    ids = [await _insert(conn, account, spec, now) for spec in plan.fresh]
            if waiting:
                await settle_waiting(conn, now, ids)
            return plan.ids(ids)

    async def get(self, job_id: int, account: str | None = None, *, with_output: bool = True) -> Job:
        async with self._db.connection() as conn:
            return await _get(conn, job_id, account, with_output=with_output)

    async def attempts(self, job_id: int, account: str | None = None) -> list[Attempt]:
        async with self._db.connection() as conn:
            await _get(conn, job_id, account, with_output=False)
            return await attempts.read(conn, int64(job_id))

    async def list_jobs(self, account: str, query: JobQuery) -> list[Job]:
        filters: list[tuple[object, LiteralString, object]] = [
            (query.ids, "id = ANY(%s)", [int64(i) for i in query.ids]),
            (query.names, "name = ANY(%s)", list(query.names)),
            (query.statuses, "status = ANY(%s)", [s.value for s in query.statuses]),
            (query.after_id, "id >= %s", int64(query.after_id)),
            (query.before_id, "id < %s", int64(query.before_id)),
            (query.created_after, "created_at >= %s", to_ns(query.created_after)),
            (query.created_before, "created_at < %s", to_ns(query.created_before)),
        ]
        clauses = ["account = %s", *(clause for given, clause, _ in filters if given)]
        params = [account, *(value for given, _, value in filters if given)]
        order = "DESC" if query.newest_first else "ASC"
        params.append(query.limit if query.limit >= 0 else None)  # like SQLite: negative = no limit
        async with self._db.connection() as conn:
            columns = "*" if query.with_output else await self._summary(conn)
            sql = f"SELECT {columns} FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id {order} LIMIT %s"
            return [_row_to_job(row) for row in await fetch_all(conn, sql.encode(), params)]  # built from literals

    async def _summary(self, conn: Conn) -> str:
        """Every column of `jobs` but the outputs, which come as empty byteas: their
        TOASTed values are never read (the catalog's list, so later columns count)."""
        if not self._summary_columns:
            rows = await fetch_all(
                conn,
                b"SELECT column_name FROM information_schema.columns"
                b" WHERE table_schema = current_schema() AND table_name = 'jobs' ORDER BY ordinal_position",
            )
            names = [row["column_name"] for row in rows if row["column_name"] not in OUTPUT_COLUMNS]
            empty = [f"''::bytea AS {name}" for name in OUTPUT_COLUMNS]
            self._summary_columns = ", ".join([*(f'"{name}"' for name in names), *empty])
        return self._summary_columns

    async def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int, per_account_limit: int = 0
    ) -> list[Job]:
        lease_args = (owner, to_ns(now + lease), to_ns(now))
        async with self._db.connection() as conn:
            if not await running_limited(conn, per_account_limit):
                rows = await fetch_all(conn, _CLAIM + _DUE, (*lease_args, to_ns(now), limit))
            else:
                # Counting running jobs per account needs a consistent view, which SKIP
                # LOCKED cannot give: claimers that enforce a limit take turns.
                limits = (per_account_limit, per_account_limit)
                async with conn.transaction():
                    await advisory_lock(conn, _CLAIM_LOCK)
                    rows = await fetch_all(
                        conn, _CLAIM + DUE_WITHIN_RUNNING_LIMIT, (*lease_args, to_ns(now), *limits, limit)
                    )
        return sorted((_row_to_job(row) for row in rows), key=lambda job: job.id)

    async def owned(self, owner: str) -> list[Job]:
        sql = SELECT_JOBS + b" WHERE status = 'processing' AND lease_owner = %s ORDER BY id"
        async with self._db.connection() as conn:
            return [_row_to_job(row) for row in await fetch_all(conn, sql, (owner,))]

    async def append_output(
        self, job_id: int, owner: str, chunks: Sequence[OutputChunk], *, attempt: int | None = None
    ) -> bool:
        async with self._db.connection() as conn:
            return await output.append(conn, job_id, owner, chunks, attempt)

    async def read_output(self, job_id: int, stream: Stream, offset: int, account: str | None = None) -> bytes:
        async with self._db.connection() as conn:
            return await output.read(conn, int64(job_id), stream, offset64(offset), account)

    async def extend_leases(
        self, owner: str, job_ids: Sequence[int], until: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> set[int]:
        if not job_ids:
            return set()
        ids = sorted(set(job_ids))
        wanted = [(attempts or {}).get(i) for i in ids]
        async with self._db.connection() as conn:
            rows = await fetch_all(
                conn,
                "UPDATE jobs SET lease_expires_at = %s FROM unnest(%s::bigint[], %s::int[]) AS a(id, attempt)"
                " WHERE jobs.id = a.id AND lease_owner = %s AND status = 'processing'"
                " AND (a.attempt IS NULL OR attempts = a.attempt) RETURNING jobs.id",
                (to_ns(until), ids, wanted, owner),
            )
        return {row["id"] for row in rows}

    async def mark_started(
        self,
        job_id: int,
        owner: str,
        container_id: str,
        container_started_at: datetime,
        *,
        attempt: int | None = None,
    ) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE jobs SET container_id = %s, container_started_at = %s WHERE " + output.HELD,
                (container_id, to_ns(container_started_at), job_id, owner, attempt, attempt),
            )

    async def finish(self, job_id: int, owner: str, outcome: Outcome, *, attempt: int | None = None) -> bool:
        ended = (to_ns(outcome.finished_at), outcome.reason, outcome.return_code)
        blobs, collected = (outcome.stdout, outcome.stderr, outcome.result), Jsonb(collected_to_doc(outcome.collected))
        lease = (job_id, owner, attempt, attempt)
        async with self._db.connection() as conn:
            # One transaction whose DELETE starts after the UPDATE locked the row, so it sees
            # every append that committed before (see output.py); one round trip.
            async with output.pipelined_transaction(conn):
                recorded = (to_ns(outcome.finished_at), outcome.return_code, attempt_reason(outcome.reason), owner)
                cursor = await conn.execute(
                    _FINISH,
                    (
                        outcome.status is JobStatus.ERROR,
                        outcome.status.value,
                        *ended,
                        *blobs,
                        collected,
                        *lease,
                        *recorded,
                    ),
                )
                await attempts.trim(conn, job_id)
                await output.discard_ended(conn, job_id)
            if await cursor.fetchone() is None:
                return False
            await settle_waiting(conn, outcome.finished_at, [job_id])
            return True

    async def unclaim(self, job_id: int, owner: str, now: datetime, reason: str, *, attempt: int | None = None) -> bool:
        async with self._db.connection() as conn:
            async with conn.transaction():
                row = await fetch_one(
                    conn,
                    "UPDATE jobs SET status = 'queued', attempts = attempts - 1, lease_owner = '',"
                    " lease_expires_at = NULL, started_at = NULL, container_id = '', container_started_at = NULL,"
                    " reason = %s WHERE " + output.HELD + " RETURNING kill_requested",
                    (reason, job_id, owner, attempt, attempt),
                )
                if row is None:
                    return False
                await output.discard(conn, [job_id])
                if row["kill_requested"]:
                    await _kill(conn, [job_id], now)
            if row["kill_requested"]:
                await settle_waiting(conn, now, [job_id])
            return True

    async def request_kill(self, job_id: int, account: str, now: datetime) -> Job:
        async with self._db.connection() as conn:
            job = await _get(conn, job_id, account)
            if job.status.terminal:
                return job
            async with conn.transaction():
                await _kill(conn, [job_id], now)
            await settle_waiting(conn, now, [job_id])
            return await _get(conn, job_id, account)

    async def kill_all(self, account: str, now: datetime) -> list[int]:
        async with self._db.connection() as conn:
            async with conn.transaction():
                rows = await fetch_all(
                    conn,
                    "SELECT id FROM jobs WHERE account = %s AND status = ANY(%s) ORDER BY id FOR UPDATE",
                    (account, _UNFINISHED),
                )
                ids = [row["id"] for row in rows]
                await _kill(conn, ids, now)
            await settle_waiting(conn, now, ids)
            return ids

    async def kill_requested(self, job_ids: Sequence[int]) -> set[int]:
        if not job_ids:
            return set()
        async with self._db.connection() as conn:
            rows = await fetch_all(
                conn,
                "SELECT id FROM jobs WHERE kill_requested AND status = 'processing' AND id = ANY(%s)",
                ([int64(i) for i in job_ids],),
            )
        return {row["id"] for row in rows}

    async def unfinished_accounts(self, after: str, limit: int) -> list[str]:
        async with self._db.connection() as conn:
            rows = await fetch_all(
                conn,
                "SELECT DISTINCT account FROM jobs WHERE status = ANY(%s) AND account > %s ORDER BY account LIMIT %s",
                (_UNFINISHED, after, limit),
            )
        return [row["account"] for row in rows]

    async def counts(self, account: str) -> dict[JobStatus, int]:
        counts = {status: 0 for status in JobStatus}
        async with self._db.connection() as conn:
            rows = await fetch_all(
                conn, "SELECT status, COUNT(*) AS n FROM jobs WHERE account = %s GROUP BY status", (account,)
            )
        for row in rows:
            counts[JobStatus(row["status"])] = row["n"]
        return counts

    async def counts_by_account(self) -> dict[str, dict[JobStatus, int]]:
        found: dict[str, dict[JobStatus, int]] = {}
        async with self._db.connection() as conn:
            rows = await fetch_all(conn, "SELECT account, status, COUNT(*) AS n FROM jobs GROUP BY account, status", ())
        for row in rows:
            found.setdefault(row["account"], {status: 0 for status in JobStatus})[JobStatus(row["status"])] = row["n"]
        return found

    async def finished_since(self, since: datetime, account: str | None = None) -> list[FinishedCount]:
        start = to_ns(since)
        query: LiteralString = (
            "SELECT account, status, (finished_at - %s::bigint) / 60000000000 AS minute, COUNT(*) AS n,"
            " COALESCE(SUM(CASE WHEN started_at IS NULL THEN 0 ELSE finished_at - started_at END), 0) AS runtime"
            " FROM jobs WHERE finished_at >= %s::bigint"
        )
        args: tuple[object, ...] = (start, start)
        if account is not None:
            query += " AND account = %s"
            args += (account,)
        query += " GROUP BY account, status, minute"
        async with self._db.connection() as conn:
            rows = await fetch_all(conn, query, args)
        return [
            FinishedCount(r["account"], int(r["minute"]), JobStatus(r["status"]), r["n"], int(r["runtime"]))
            for r in rows
        ]

    async def reap_expired(self, now: datetime, max_attempts: int) -> list[Job]:
        async with self._db.connection() as conn:
            async with conn.transaction():
                rows = await fetch_all(
                    conn,
                    "SELECT * FROM jobs WHERE status = 'processing' AND lease_expires_at < %s"
                    " ORDER BY id FOR UPDATE SKIP LOCKED",  # another reaper or a finish has the locked ones
                    (to_ns(now),),
                )
                requeued: list[int] = []
                ended: list[int] = []
                for row in rows:
                    job = _row_to_job(row)
                    decision = decide_reap(job, now, max_attempts)
                    if decision.requeued:
                        await conn.execute(
                            "UPDATE jobs SET status = 'queued', lease_owner = '', lease_expires_at = NULL,"
                            " run_after = %s, reason = %s WHERE id = %s",
                            (to_ns(decision.run_after), decision.reason, job.id),
                        )
                        requeued.append(job.id)
                    else:
                        await conn.execute(
                            "UPDATE jobs SET status = %s, finished_at = %s, lease_owner = '', lease_expires_at = NULL,"
                            " reason = %s WHERE id = %s",
                            (decision.status.value, to_ns(now), decision.reason, job.id),
                        )
                        ended.append(job.id)
                    await attempts.record(conn, reaped_attempt(job, decision, now))
                await output.discard(conn, requeued)  # a new attempt starts with no output
                await output.keep(conn, ended)
            await settle_waiting(conn, now, None)  # every pass: see dependencies.py
            if not rows:
                return []
            reaped = await fetch_all(
                conn, "SELECT * FROM jobs WHERE id = ANY(%s) ORDER BY id", ([r["id"] for r in rows],)
            )
            return [_row_to_job(row) for row in reaped]

    # -- removal ----------------------------------------------------------------------

    async def delete_finished(self, account: str, job_ids: Sequence[int]) -> list[int]:
        async with self._db.connection() as conn:
            return await retention.delete_finished(conn, account, job_ids)

    async def purge(self, output_before: datetime | None, jobs_before: datetime | None, limit: int) -> Purged:
        async with self._db.connection() as conn:
            jobs = await retention.purge_jobs(conn, jobs_before, limit) if jobs_before is not None else 0
            outputs = await retention.purge_output(conn, output_before, limit) if output_before is not None else 0
        return Purged(jobs, outputs)

    async def trim_output(self, account_bytes: int, limit: int) -> int:
        async with self._db.connection() as conn:
            return await retention.trim_output(conn, account_bytes, limit)

    # -- server identities ------------------------------------------------------------

    async def hold_identity(
        self, server_id: str, holder: str, now: datetime, until: datetime, *, replacing: str = ""
    ) -> str:
        async with self._db.connection() as conn:
            return await identity.hold(conn, server_id, holder, to_ns(now) or 0, to_ns(until) or 0, replacing)

    async def release_identity(self, server_id: str, holder: str) -> None:
        async with self._db.connection() as conn:
            await identity.release(conn, server_id, holder)


# -- helpers run on one connection ------------------------------------------------------------


async def _insert_queued(conn: Conn, account: str, specs: Sequence[JobSpec], now: datetime) -> list[int]:
    """Insert jobs without dependencies in one statement that takes the submit lock."""
    docs, keys = [Jsonb(spec_to_doc(spec)) for spec in specs], [s.idempotency_key for s in specs]
    params = (_SUBMIT_LOCK, account, to_ns(now), [s.name for s in specs], docs, [s.stdin for s in specs], keys)
    return sorted(row["id"] for row in await fetch_all(conn, _INSERT_QUEUED, params))


async def _insert(conn: Conn, account: str, spec: JobSpec, now: datetime) -> int:
    """Insert one job (inside the locked transaction), checking its dependencies."""
    if spec.depends_on:
        found = await fetch_all(
            conn,
            "SELECT id FROM jobs WHERE id = ANY(%s) AND account = %s",
            ([int64(d) for d in spec.depends_on], account),
        )
        if missing := sorted(d for d in set(spec.depends_on) if int64(d) != d or d not in {row["id"] for row in found}):
            raise InvalidArgument(f"depends_on: job {missing[0]} not found")
    status = JobStatus.WAITING if spec.depends_on else JobStatus.QUEUED
    values = (account, spec.name, status.value, Jsonb(spec_to_doc(spec)), spec.stdin, list(spec.depends_on))
    row = await fetch_one(conn, _INSERT_ONE, (*values, to_ns(now), spec.idempotency_key))
    assert row is not None
    return int(row["id"])


async def _get(conn: Conn, job_id: int, account: str | None, *, with_output: bool = True) -> Job:
    select = SELECT_JOBS if with_output else b"SELECT * FROM jobs"
    row = await fetch_one(conn, select + b" WHERE id = %s", (int64(job_id),))
    if row is None or (account is not None and row["account"] != account):
        raise NotFound(f"job {job_id} not found")
    return _row_to_job(row)


async def _kill(conn: Conn, job_ids: Sequence[int], now: datetime) -> None:
    """Flag a kill; jobs that never started end KILLED here and now."""
    ids = list(job_ids)
    await conn.execute(
        "UPDATE jobs SET kill_requested = TRUE WHERE id = ANY(%s) AND status <> ALL(%s)",
        (ids, _TERMINAL),
    )
    await conn.execute(
        "UPDATE jobs SET status = 'killed', finished_at = %s, reason = 'killed before it started'"
        " WHERE id = ANY(%s) AND status IN ('waiting', 'queued')",
        (to_ns(now), ids),
    )


def _row_to_job(row: DictRow) -> Job:
    job = job_from_record(row, row["spec"], row["collected"])
    for name in ("stdout", "stderr"):  # a PROCESSING job's output so far (the SELECT_JOBS columns)
        if (so_far := output.live(row, name)) is not None:
            setattr(job, name, so_far)
    return job
