"""Schema of the SQLite schedule store: `MIGRATIONS`, applied in order by
`SqliteDatabase.connect` (`sqlite_db.py`). The applied version lives in the
`schedule_schema` table (the job store owns `PRAGMA user_version` of the same file).
Append new migrations; never edit an applied one."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
    CREATE TABLE saved_jobs (
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        spec TEXT NOT NULL,
        stdin BLOB NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        PRIMARY KEY (account, name, version)
    );
    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        next_fire_at INTEGER,
        next_due_at INTEGER,
        lease_owner TEXT NOT NULL DEFAULT '',
        lease_expires_at INTEGER,
        UNIQUE (account, name)
    );
    CREATE INDEX schedules_due ON schedules (next_due_at) WHERE paused = 0 AND next_due_at IS NOT NULL;
    CREATE TABLE fires (
        schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
        scheduled_at INTEGER NOT NULL,
        account TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        job_id INTEGER,
        job_status TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        manual INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (schedule_id, scheduled_at)
    );
    CREATE INDEX fires_open ON fires (scheduled_at) WHERE outcome IN ('pending', 'buffered', 'running');
    """,
]
