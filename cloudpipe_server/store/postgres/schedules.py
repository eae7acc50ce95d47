"""PostgreSQL schedule store (psycopg 3, async, on the pool it shares with the job
store: the backend's one `database.PostgresDatabase`). Claims are `UPDATE ... WHERE id
IN (SELECT ... FOR UPDATE SKIP LOCKED)`; a fire record is one transaction that locks
the schedule row, checks the lease, inserts the fires (`ON CONFLICT DO NOTHING` on the
primary key (schedule_id, scheduled_at)) and moves the cursor. The versions of one
saved job, and its deletion, are serialised by a transaction-scoped advisory lock on
its name. The schema (`schema.py`) version lives in `schedule_schema_version`, migrated
under an advisory lock like the job store's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import LiteralString

from psycopg import errors
from psycopg.types.json import Jsonb

from cloudpipe_server.errors import AlreadyExists
from cloudpipe_server.models import JobSpec
from cloudpipe_server.scheduler.models import Fire, SavedJob, SavedJobWrite, Schedule, ScheduleSpec, ScheduleWrite
from cloudpipe_server.store._shared import (
    check_saved_job_write,
    check_schedule_write,
    cursor_ns,
    fire_from_row,
    fire_values,
    from_ns,
    saved_job_exists,
    saved_job_from_row,
    saved_job_missing,
    schedule_exists,
    schedule_from_row,
    schedule_missing,
    schedule_spec_to_doc,
    spec_to_doc,
    to_ns,
)
from cloudpipe_server.store.base import FireRecord, OutcomeChange, ScheduleStore
from cloudpipe_server.store.postgres.database import Conn, PostgresDatabase
from cloudpipe_server.store.postgres.schema import MIGRATE_LOCK_SCHEDULES, SCHEDULE_MIGRATIONS, SCHEDULE_VERSION_TABLE

_INSERT_FIRE: LiteralString = (
    "INSERT INTO fires (schedule_id, scheduled_at, account, due_at, recorded_at, outcome, job_id, job_status,"
    " reason, manual) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (schedule_id, scheduled_at) DO NOTHING RETURNING scheduled_at"
)
_OPEN = ["pending", "buffered", "running"]


class PostgresScheduleStore(ScheduleStore):
    """`ScheduleStore` on the PostgreSQL database `db`, whose pool the job store shares."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def initialize(self) -> None:
        await self._db.connect(SCHEDULE_MIGRATIONS, version_table=SCHEDULE_VERSION_TABLE, lock=MIGRATE_LOCK_SCHEDULES)

    async def close(self) -> None:
        await self._db.close()

    # -- saved jobs ----------------------------------------------------------------

    async def create_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        async with self._db.connection() as conn:
            return await _create_saved_job(conn, account, name, spec, description, now)

    async def update_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        async with self._db.connection() as conn, conn.transaction():
            latest = await _latest_version(conn, account, name)
            if latest is None:
                raise saved_job_missing(name)
            return await _insert_version(conn, account, name, latest + 1, spec, description, now)

    async def get_saved_job(self, account: str, name: str, version: int = 0) -> SavedJob:
        if version:
            rows = await self._db.rows(
                "SELECT * FROM saved_jobs WHERE account = %s AND name = %s AND version = %s", (account, name, version)
            )
        else:
            rows = await self._db.rows(
                "SELECT * FROM saved_jobs WHERE account = %s AND name = %s ORDER BY version DESC LIMIT 1",
                (account, name),
            )
        if not rows:
            exists = version and await self._db.rows(
                "SELECT 1 FROM saved_jobs WHERE account = %s AND name = %s LIMIT 1", (account, name)
            )
            raise saved_job_missing(name, version if exists else 0)
        return saved_job_from_row(rows[0], rows[0]["spec"])

    async def list_saved_jobs(self, account: str) -> list[SavedJob]:
        rows = await self._db.rows(
            "SELECT DISTINCT ON (name) * FROM saved_jobs WHERE account = %s ORDER BY name, version DESC", (account,)
        )
        return [saved_job_from_row(row, row["spec"]) for row in rows]

    async def delete_saved_job(self, account: str, name: str) -> None:
        # under the saved job's lock: an apply that checked its version finishes first
        # (else it would store the next version of a job deleted meanwhile, bringing it back)
        async with self._db.connection() as conn, conn.transaction():
            await _lock_saved_job(conn, account, name)
            cursor = await conn.execute("DELETE FROM saved_jobs WHERE account = %s AND name = %s", (account, name))
            if cursor.rowcount == 0:
                raise saved_job_missing(name)

    # -- schedules -----------------------------------------------------------------

    async def create_schedule(self, schedule: Schedule) -> Schedule:
        async with self._db.connection() as conn:
            return await _create_schedule(conn, schedule)

    async def update_schedule(
        self, account: str, name: str, spec: ScheduleSpec, cursor: tuple[datetime, datetime] | None, now: datetime
    ) -> Schedule:
        async with self._db.connection() as conn:
            return await _update_schedule(conn, account, name, spec, cursor, now)

    async def apply_changes(
        self, account: str, saved_jobs: Sequence[SavedJobWrite], schedules: Sequence[ScheduleWrite], now: datetime
    ) -> tuple[list[SavedJob], list[Schedule]]:
        async with self._db.connection() as conn, conn.transaction():
            return await _apply(conn, account, saved_jobs, schedules, now)

    async def set_paused(
        self, account: str, name: str, paused: bool, cursor: tuple[datetime, datetime] | None, now: datetime
    ) -> Schedule:
        fire_at, due_at = cursor_ns(cursor)
        rows = await self._db.rows(
            "UPDATE schedules SET paused = %s, next_fire_at = %s, next_due_at = %s, updated_at = %s,"
            " lease_owner = '', lease_expires_at = NULL WHERE account = %s AND name = %s RETURNING *",
            (paused, fire_at, due_at, to_ns(now), account, name),
        )
        if not rows:
            raise schedule_missing(name)
        return schedule_from_row(rows[0], rows[0]["spec"])

    async def get_schedule(self, account: str, name: str) -> Schedule:
        rows = await self._db.rows("SELECT * FROM schedules WHERE account = %s AND name = %s", (account, name))
        if not rows:
            raise schedule_missing(name)
        return schedule_from_row(rows[0], rows[0]["spec"])

    async def schedules_by_id(self, ids: Sequence[str]) -> dict[str, Schedule]:
        rows = await self._db.rows("SELECT * FROM schedules WHERE id = ANY(%s)", (list(ids),)) if ids else []
        return {row["id"]: schedule_from_row(row, row["spec"]) for row in rows}

    async def list_schedules(self, account: str) -> list[Schedule]:
        rows = await self._db.rows("SELECT * FROM schedules WHERE account = %s ORDER BY name", (account,))
        return [schedule_from_row(row, row["spec"]) for row in rows]

    async def delete_schedule(self, account: str, name: str) -> None:
        async with self._db.connection() as conn:
            cursor = await conn.execute("DELETE FROM schedules WHERE account = %s AND name = %s", (account, name))
            if cursor.rowcount == 0:
                raise schedule_missing(name)

    async def schedules_using(self, account: str, saved_job: str) -> list[str]:
        rows = await self._db.rows(
            "SELECT name FROM schedules WHERE account = %s AND spec->>'saved_job' = %s ORDER BY name",
            (account, saved_job),
        )
        return [row["name"] for row in rows]

    # -- firing ---------------------------------------------------------------------

    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Schedule]:
        rows = await self._db.rows(
            "UPDATE schedules SET lease_owner = %s, lease_expires_at = %s WHERE id IN ("
            " SELECT id FROM schedules WHERE NOT paused AND next_due_at IS NOT NULL AND next_due_at <= %s"
            " AND (lease_owner = '' OR lease_expires_at < %s) ORDER BY next_due_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED) RETURNING *",
            (owner, to_ns(now + lease), to_ns(now), to_ns(now), limit),
        )
        claimed = [schedule_from_row(row, row["spec"]) for row in rows]
        return sorted(claimed, key=lambda s: (s.next_due_at, s.id))

    async def record_fires(self, owner: str, records: Sequence[FireRecord]) -> list[list[Fire] | None]:
        if not records:
            return []
        async with self._db.connection() as conn, conn.transaction():
            return [await _record(conn, owner, record) for record in records]

    async def add_fire(self, fire: Fire) -> bool:
        return bool(await self._db.rows(_INSERT_FIRE, fire_values(fire)))

    async def next_due_at(self) -> datetime | None:
        rows = await self._db.rows(
            "SELECT min(next_due_at) AS due FROM schedules WHERE NOT paused AND next_due_at IS NOT NULL"
        )
        return from_ns(rows[0]["due"]) if rows else None

    async def set_fire_outcomes(self, changes: Sequence[OutcomeChange]) -> list[bool]:
        if not changes:
            return []
        applied: list[bool] = []
        async with self._db.connection() as conn, conn.transaction():
            for change in changes:
                cursor = await conn.execute(
                    "UPDATE fires SET outcome = %s, job_id = coalesce(%s, job_id), job_status = %s,"
                    " reason = coalesce(%s, reason) WHERE schedule_id = %s AND scheduled_at = %s AND outcome = %s",
                    (
                        change.outcome.value,
                        change.job_id,
                        change.job_status,
                        change.reason,
                        change.schedule_id,
                        to_ns(change.scheduled_at),
                        change.expected.value,
                    ),
                )
                applied.append(cursor.rowcount == 1)
        return applied

    async def open_fires(self, schedule_ids: Sequence[str] | None = None, limit: int = 1000) -> list[Fire]:
        if schedule_ids is None:
            rows = await self._db.rows(
                "SELECT * FROM fires WHERE outcome = ANY(%s) ORDER BY scheduled_at LIMIT %s", (_OPEN, limit)
            )
        elif schedule_ids:
            rows = await self._db.rows(
                "SELECT * FROM fires WHERE outcome = ANY(%s) AND schedule_id = ANY(%s) ORDER BY scheduled_at LIMIT %s",
                (_OPEN, list(schedule_ids), limit),
            )
        else:
            rows = []
        return [fire_from_row(row) for row in rows]

    async def fires(self, schedule_id: str, limit: int = 100, before: datetime | None = None) -> list[Fire]:
        rows = await self._db.rows(
            "SELECT * FROM fires WHERE schedule_id = %s AND scheduled_at < %s ORDER BY scheduled_at DESC LIMIT %s",
            (schedule_id, to_ns(before) if before is not None else 1 << 62, limit),
        )
        return [fire_from_row(row) for row in rows]


async def _insert_version(
    conn: Conn, account: str, name: str, version: int, spec: JobSpec, description: str, now: datetime
) -> SavedJob:
    await conn.execute(
        "INSERT INTO saved_jobs (account, name, version, spec, stdin, description, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (account, name, version, Jsonb(spec_to_doc(spec)), spec.stdin, description, to_ns(now)),
    )
    return SavedJob(account, name, version, spec, now, description)


async def _lock_saved_job(conn: Conn, account: str, name: str) -> None:
    """Take, until the end of the transaction, the advisory lock that serialises the
    versions of one saved job (and its deletion)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (f"{account}\x1f{name}",))


async def _latest_version(conn: Conn, account: str, name: str) -> int | None:
    """The saved job's latest version (None: none), under its lock (`_lock_saved_job`)."""
    await _lock_saved_job(conn, account, name)
    cursor = await conn.execute(
        "SELECT max(version) AS v FROM saved_jobs WHERE account = %s AND name = %s", (account, name)
    )
    row = await cursor.fetchone()
    return None if row is None or row["v"] is None else int(row["v"])


async def _create_saved_job(
    conn: Conn, account: str, name: str, spec: JobSpec, description: str, now: datetime
) -> SavedJob:
    try:
        return await _insert_version(conn, account, name, 1, spec, description, now)
    except errors.UniqueViolation:
        raise saved_job_exists(account, name) from None


async def _create_schedule(conn: Conn, schedule: Schedule) -> Schedule:
    fire_at, due_at = cursor_ns(schedule.cursor)
    try:
        cursor = await conn.execute(
            "INSERT INTO schedules (id, account, name, spec, paused, created_at, updated_at, next_fire_at,"
            " next_due_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (
                schedule.id,
                schedule.account,
                schedule.name,
                Jsonb(schedule_spec_to_doc(schedule.spec)),
                schedule.paused,
                to_ns(schedule.created_at),
                to_ns(schedule.updated_at),
                fire_at,
                due_at,
            ),
        )
    except errors.UniqueViolation:
        raise schedule_exists(schedule.account, schedule.name) from None
    row = await cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING returns the row it inserted
    return schedule_from_row(row, row["spec"])


async def _update_schedule(
    conn: Conn, account: str, name: str, spec: ScheduleSpec, cursor: tuple[datetime, datetime] | None, now: datetime
) -> Schedule:
    fire_at, due_at = cursor_ns(cursor)
    try:
        result = await conn.execute(
            "UPDATE schedules SET name = %s, spec = %s, next_fire_at = %s, next_due_at = %s, updated_at = %s,"
            " lease_owner = '', lease_expires_at = NULL WHERE account = %s AND name = %s RETURNING *",
            (spec.name, Jsonb(schedule_spec_to_doc(spec)), fire_at, due_at, to_ns(now), account, name),
        )
    except errors.UniqueViolation:
        raise schedule_exists(account, spec.name) from None
    row = await result.fetchone()
    if row is None:
        raise schedule_missing(name)
    return schedule_from_row(row, row["spec"])


async def _apply(
    conn: Conn, account: str, saved_jobs: Sequence[SavedJobWrite], schedules: Sequence[ScheduleWrite], now: datetime
) -> tuple[list[SavedJob], list[Schedule]]:
    """`ScheduleStore.apply_changes` in the caller's transaction. The preconditions lock
    what they read (each saved job's advisory lock, each schedule's row) in name order,
    so concurrent applies wait for each other instead of deadlocking; a schedule created
    meanwhile by someone else is caught by the unique index (the transaction then rolls
    back whole)."""
    for job in sorted(saved_jobs, key=lambda j: j.name):
        check_saved_job_write(job.name, job.expected_version, await _latest_version(conn, account, job.name))
    for write in sorted(schedules, key=lambda w: w.schedule.name):
        cursor = await conn.execute(
            "SELECT updated_at FROM schedules WHERE account = %s AND name = %s FOR UPDATE",
            (account, write.schedule.name),
        )
        row = await cursor.fetchone()
        check_schedule_write(write.schedule.name, write.expected_updated_at, None if row is None else row["updated_at"])
    stored_jobs = []
    for job in saved_jobs:
        version = job.expected_version + 1
        try:
            stored_jobs.append(await _insert_version(conn, account, job.name, version, job.spec, job.description, now))
        except errors.UniqueViolation:  # created meanwhile by a Create, which takes no advisory lock
            check_saved_job_write(job.name, job.expected_version, version)  # raises
    stored = []
    for write in schedules:
        try:
            if write.expected_updated_at is None:
                stored.append(await _create_schedule(conn, write.schedule))
            else:
                spec, cursor_at = write.schedule.spec, write.schedule.cursor
                stored.append(await _update_schedule(conn, account, spec.name, spec, cursor_at, now))
        except AlreadyExists:
            check_schedule_write(write.schedule.name, None, to_ns(now))  # created meanwhile: raises
    return stored_jobs, stored


async def _record(conn: Conn, owner: str, record: FireRecord) -> list[Fire] | None:
    cursor = await conn.execute("SELECT lease_owner FROM schedules WHERE id = %s FOR UPDATE", (record.schedule_id,))
    row = await cursor.fetchone()
    if row is None or row["lease_owner"] != owner:
        return None
    inserted = []
    for fire in record.fires:
        if await (await conn.execute(_INSERT_FIRE, fire_values(fire))).fetchone():
            inserted.append(fire)
    fire_at, due_at = cursor_ns(record.cursor)
    await conn.execute(
        "UPDATE schedules SET next_fire_at = %s, next_due_at = %s, lease_owner = '', lease_expires_at = NULL"
        " WHERE id = %s",
        (fire_at, due_at, record.schedule_id),
    )
    return inserted
