"""SQLite schedule store, in the job store's file and on its connection (the backend's
one `database.SqliteDatabase`; schema in `schema.py`). Writes use `BEGIN IMMEDIATE`, so
claims and fire records are atomic across processes sharing the file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from cloudpipe_server.models import JobSpec
from cloudpipe_server.scheduler.models import Fire, SavedJob, SavedJobWrite, Schedule, ScheduleSpec, ScheduleWrite
from cloudpipe_server.store._shared import (
    FIRE_COLUMNS,
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
from cloudpipe_server.store.sqlite.database import SqliteDatabase
from cloudpipe_server.store.sqlite.schema import SCHEDULE_MIGRATIONS, SCHEDULE_VERSION_TABLE

_FIRE_COLUMNS = ", ".join(FIRE_COLUMNS)
_INSERT_FIRE = (
    f"INSERT INTO fires ({_FIRE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (schedule_id, scheduled_at) DO NOTHING"
)
_OPEN = ("pending", "buffered", "running")


class SqliteScheduleStore(ScheduleStore):
    """`ScheduleStore` on the SQLite database `db`, which the job store shares."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def initialize(self) -> None:
        await self._db.connect(SCHEDULE_MIGRATIONS, version_table=SCHEDULE_VERSION_TABLE)

    async def close(self) -> None:
        await self._db.close()

    # -- saved jobs ----------------------------------------------------------------

    async def create_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        def insert(conn: sqlite3.Connection) -> SavedJob:
            if _latest_version(conn, account, name) is not None:
                raise saved_job_exists(account, name)
            return _insert_version(conn, account, name, 1, spec, description, now)

        return await self._db.run(insert, write=True)

    async def update_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        def insert(conn: sqlite3.Connection) -> SavedJob:
            latest = _latest_version(conn, account, name)
            if latest is None:
                raise saved_job_missing(name)
            return _insert_version(conn, account, name, latest + 1, spec, description, now)

        return await self._db.run(insert, write=True)

    async def get_saved_job(self, account: str, name: str, version: int = 0) -> SavedJob:
        def read(conn: sqlite3.Connection) -> SavedJob:
            query = "SELECT * FROM saved_jobs WHERE account = ? AND name = ?"
            if version:
                row = conn.execute(f"{query} AND version = ?", (account, name, version)).fetchone()
            else:
                row = conn.execute(f"{query} ORDER BY version DESC LIMIT 1", (account, name)).fetchone()
            if row is None:
                raise saved_job_missing(name, version if version and _exists(conn, account, name) else 0)
            return saved_job_from_row(row, json.loads(row["spec"]))

        return await self._db.run(read)

    async def list_saved_jobs(self, account: str) -> list[SavedJob]:
        def read(conn: sqlite3.Connection) -> list[SavedJob]:
            rows = conn.execute(
                "SELECT s.* FROM saved_jobs s JOIN (SELECT name, max(version) AS v FROM saved_jobs"
                " WHERE account = ? GROUP BY name) latest ON s.name = latest.name AND s.version = latest.v"
                " WHERE s.account = ? ORDER BY s.name",
                (account, account),
            )
            return [saved_job_from_row(row, json.loads(row["spec"])) for row in rows]

        return await self._db.run(read)

    async def delete_saved_job(self, account: str, name: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM saved_jobs WHERE account = ? AND name = ?", (account, name)).rowcount == 0:
                raise saved_job_missing(name)

        await self._db.run(delete, write=True)

    # -- schedules -----------------------------------------------------------------

    async def create_schedule(self, schedule: Schedule) -> Schedule:
        return await self._db.run(lambda conn: _create_schedule(conn, schedule), write=True)

    async def update_schedule(
        self, account: str, name: str, spec: ScheduleSpec, cursor: tuple[datetime, datetime] | None, now: datetime
    ) -> Schedule:
        return await self._db.run(lambda conn: _update_schedule(conn, account, name, spec, cursor, now), write=True)

    async def apply_changes(
        self, account: str, saved_jobs: Sequence[SavedJobWrite], schedules: Sequence[ScheduleWrite], now: datetime
    ) -> tuple[list[SavedJob], list[Schedule]]:
        return await self._db.run(lambda conn: _apply(conn, account, saved_jobs, schedules, now), write=True)

    async def set_paused(
        self, account: str, name: str, paused: bool, cursor: tuple[datetime, datetime] | None, now: datetime
    ) -> Schedule:
        def update(conn: sqlite3.Connection) -> Schedule:
            fire_at, due_at = cursor_ns(cursor)
            changed = conn.execute(
                "UPDATE schedules SET paused = ?, next_fire_at = ?, next_due_at = ?, updated_at = ?,"
                " lease_owner = '', lease_expires_at = NULL WHERE account = ? AND name = ?",
                (int(paused), fire_at, due_at, to_ns(now), account, name),
            ).rowcount
            if not changed:
                raise schedule_missing(name)
            return _get(conn, account, name)

        return await self._db.run(update, write=True)

    async def get_schedule(self, account: str, name: str) -> Schedule:
        return await self._db.run(lambda conn: _get(conn, account, name))

    async def schedules_by_id(self, ids: Sequence[str]) -> dict[str, Schedule]:
        def read(conn: sqlite3.Connection) -> dict[str, Schedule]:
            rows = conn.execute(f"SELECT * FROM schedules WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))
            return {row["id"]: schedule_from_row(row, row["spec"]) for row in rows}

        return await self._db.run(read) if ids else {}

    async def list_schedules(self, account: str) -> list[Schedule]:
        def read(conn: sqlite3.Connection) -> list[Schedule]:
            rows = conn.execute("SELECT * FROM schedules WHERE account = ? ORDER BY name", (account,))
            return [schedule_from_row(row, row["spec"]) for row in rows]

        return await self._db.run(read)

    async def delete_schedule(self, account: str, name: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM schedules WHERE account = ? AND name = ?", (account, name)).rowcount == 0:
                raise schedule_missing(name)

        await self._db.run(delete, write=True)

    async def schedules_using(self, account: str, saved_job: str) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT name FROM schedules WHERE account = ? AND json_extract(spec, '$.saved_job') = ? ORDER BY name",
                (account, saved_job),
            )
            return [row["name"] for row in rows]

        return await self._db.run(read)

    # -- firing ---------------------------------------------------------------------

    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Schedule]:
        def claim(conn: sqlite3.Connection) -> list[Schedule]:
            rows = conn.execute(
                "UPDATE schedules SET lease_owner = ?, lease_expires_at = ? WHERE id IN ("
                " SELECT id FROM schedules WHERE paused = 0 AND next_due_at IS NOT NULL AND next_due_at <= ?"
                " AND (lease_owner = '' OR lease_expires_at < ?) ORDER BY next_due_at LIMIT ?) RETURNING *",
                (owner, to_ns(now + lease), to_ns(now), to_ns(now), limit),
            ).fetchall()
            return sorted((schedule_from_row(row, row["spec"]) for row in rows), key=lambda s: (s.next_due_at, s.id))

        return await self._db.run(claim, write=True)

    async def record_fires(self, owner: str, records: Sequence[FireRecord]) -> list[list[Fire] | None]:
        def record(conn: sqlite3.Connection) -> list[list[Fire] | None]:
            return [_record(conn, owner, item) for item in records]

        return await self._db.run(record, write=True) if records else []

    async def add_fire(self, fire: Fire) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute(_INSERT_FIRE, fire_values(fire)).rowcount == 1)

        return await self._db.run(insert, write=True)

    async def next_due_at(self) -> datetime | None:
        def read(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute(
                "SELECT min(next_due_at) FROM schedules WHERE paused = 0 AND next_due_at IS NOT NULL"
            ).fetchone()
            return from_ns(row[0])

        return await self._db.run(read)

    async def set_fire_outcomes(self, changes: Sequence[OutcomeChange]) -> list[bool]:
        def update(conn: sqlite3.Connection) -> list[bool]:
            return [
                conn.execute(
                    "UPDATE fires SET outcome = ?, job_id = coalesce(?, job_id), job_status = ?,"
                    " reason = coalesce(?, reason) WHERE schedule_id = ? AND scheduled_at = ? AND outcome = ?",
                    (
                        change.outcome.value,
                        change.job_id,
                        change.job_status,
                        change.reason,
                        change.schedule_id,
                        to_ns(change.scheduled_at),
                        change.expected.value,
                    ),
                ).rowcount
                == 1
                for change in changes
            ]

        return await self._db.run(update, write=True) if changes else []

    async def open_fires(self, schedule_ids: Sequence[str] | None = None, limit: int = 1000) -> list[Fire]:
        def read(conn: sqlite3.Connection) -> list[Fire]:
            query = f"SELECT * FROM fires WHERE outcome IN {_OPEN}"
            args: list[Any] = []
            if schedule_ids is not None:
                if not schedule_ids:
                    return []
                query += f" AND schedule_id IN ({','.join('?' * len(schedule_ids))})"
                args.extend(schedule_ids)
            rows = conn.execute(f"{query} ORDER BY scheduled_at LIMIT ?", (*args, limit))
            return [fire_from_row(row) for row in rows]

        return await self._db.run(read)

    async def fires(self, schedule_id: str, limit: int = 100, before: datetime | None = None) -> list[Fire]:
        def read(conn: sqlite3.Connection) -> list[Fire]:
            rows = conn.execute(
                "SELECT * FROM fires WHERE schedule_id = ? AND scheduled_at < ? ORDER BY scheduled_at DESC LIMIT ?",
                (schedule_id, to_ns(before) if before is not None else 1 << 62, limit),
            )
            return [fire_from_row(row) for row in rows]

        return await self._db.run(read)


def _exists(conn: sqlite3.Connection, account: str, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM saved_jobs WHERE account = ? AND name = ?", (account, name)).fetchone() is not None
    )


def _latest_version(conn: sqlite3.Connection, account: str, name: str) -> int | None:
    row = conn.execute("SELECT max(version) FROM saved_jobs WHERE account = ? AND name = ?", (account, name)).fetchone()
    return None if row[0] is None else int(row[0])


def _create_schedule(conn: sqlite3.Connection, schedule: Schedule) -> Schedule:
    fire_at, due_at = cursor_ns(schedule.cursor)
    try:
        conn.execute(
            "INSERT INTO schedules (id, account, name, spec, paused, created_at, updated_at,"
            " next_fire_at, next_due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                schedule.id,
                schedule.account,
                schedule.name,
                json.dumps(schedule_spec_to_doc(schedule.spec)),
                int(schedule.paused),
                to_ns(schedule.created_at),
                to_ns(schedule.updated_at),
                fire_at,
                due_at,
            ),
        )
    except sqlite3.IntegrityError:
        raise schedule_exists(schedule.account, schedule.name) from None
    return _get(conn, schedule.account, schedule.name)


def _update_schedule(
    conn: sqlite3.Connection,
    account: str,
    name: str,
    spec: ScheduleSpec,
    cursor: tuple[datetime, datetime] | None,
    now: datetime,
) -> Schedule:
    fire_at, due_at = cursor_ns(cursor)
    try:
        changed = conn.execute(
            "UPDATE schedules SET name = ?, spec = ?, next_fire_at = ?, next_due_at = ?, updated_at = ?,"
            " lease_owner = '', lease_expires_at = NULL WHERE account = ? AND name = ?",
            (spec.name, json.dumps(schedule_spec_to_doc(spec)), fire_at, due_at, to_ns(now), account, name),
        ).rowcount
    except sqlite3.IntegrityError:
        raise schedule_exists(account, spec.name) from None
    if not changed:
        raise schedule_missing(name)
    return _get(conn, account, spec.name)


def _apply(
    conn: sqlite3.Connection,
    account: str,
    saved_jobs: Sequence[SavedJobWrite],
    schedules: Sequence[ScheduleWrite],
    now: datetime,
) -> tuple[list[SavedJob], list[Schedule]]:
    """`ScheduleStore.apply_changes` inside the caller's write transaction: every
    precondition first, then the writes (a failure rolls all of them back)."""
    for job in saved_jobs:
        check_saved_job_write(job.name, job.expected_version, _latest_version(conn, account, job.name))
    for write in schedules:
        row = conn.execute(
            "SELECT updated_at FROM schedules WHERE account = ? AND name = ?", (account, write.schedule.name)
        ).fetchone()
        check_schedule_write(write.schedule.name, write.expected_updated_at, None if row is None else row[0])
    stored_jobs = [
        _insert_version(conn, account, job.name, job.expected_version + 1, job.spec, job.description, now)
        for job in saved_jobs
    ]
    stored = [
        _create_schedule(conn, write.schedule)
        if write.expected_updated_at is None
        else _update_schedule(conn, account, write.schedule.name, write.schedule.spec, write.schedule.cursor, now)
        for write in schedules
    ]
    return stored_jobs, stored


def _insert_version(
    conn: sqlite3.Connection, account: str, name: str, version: int, spec: JobSpec, description: str, now: datetime
) -> SavedJob:
    conn.execute(
        "INSERT INTO saved_jobs (account, name, version, spec, stdin, description, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account, name, version, json.dumps(spec_to_doc(spec)), spec.stdin, description, to_ns(now)),
    )
    return SavedJob(account, name, version, spec, now, description)


def _get(conn: sqlite3.Connection, account: str, name: str) -> Schedule:
    row = conn.execute("SELECT * FROM schedules WHERE account = ? AND name = ?", (account, name)).fetchone()
    if row is None:
        raise schedule_missing(name)
    return schedule_from_row(row, row["spec"])


def _record(conn: sqlite3.Connection, owner: str, record: FireRecord) -> list[Fire] | None:
    row = conn.execute("SELECT lease_owner FROM schedules WHERE id = ?", (record.schedule_id,)).fetchone()
    if row is None or row["lease_owner"] != owner:
        return None
    inserted = [fire for fire in record.fires if conn.execute(_INSERT_FIRE, fire_values(fire)).rowcount == 1]
    fire_at, due_at = cursor_ns(record.cursor)
    conn.execute(
        "UPDATE schedules SET next_fire_at = ?, next_due_at = ?, lease_owner = '', lease_expires_at = NULL"
        " WHERE id = ?",
        (fire_at, due_at, record.schedule_id),
    )
    return inserted
