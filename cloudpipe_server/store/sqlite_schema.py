"""Schema of the SQLite store: `MIGRATIONS`, applied in order by `SqliteDatabase.connect`
(`sqlite_db.py`), with the applied version in `PRAGMA user_version`. Append new
migrations; never edit an applied one."""

from __future__ import annotations

from cloudpipe_server.store import sqlite_dependencies

MIGRATIONS: list[str] = [
    # 1: jobs
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        spec TEXT NOT NULL,
        stdin BLOB NOT NULL DEFAULT x'',
        depends_on TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        container_started_at INTEGER,
        finished_at INTEGER,
        return_code INTEGER,
        stdout BLOB NOT NULL DEFAULT x'',
        stderr BLOB NOT NULL DEFAULT x'',
        result BLOB NOT NULL DEFAULT x'',
        reason TEXT NOT NULL DEFAULT '',
        collected TEXT,
        kill_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        container_id TEXT NOT NULL DEFAULT '',
        lease_owner TEXT NOT NULL DEFAULT '',
        lease_expires_at INTEGER
    );
    CREATE INDEX jobs_status_id ON jobs (status, id);
    CREATE INDEX jobs_account_id ON jobs (account, id);
    CREATE INDEX jobs_account_name ON jobs (account, name);
    """,
    # 2: idempotency keys, retry backoff, output chunks of running jobs
    """
    ALTER TABLE jobs ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN run_after INTEGER;
    CREATE UNIQUE INDEX jobs_account_idempotency_key ON jobs (account, idempotency_key) WHERE idempotency_key <> '';
    CREATE TABLE job_output (
        job_id INTEGER NOT NULL REFERENCES jobs (id),
        stream INTEGER NOT NULL,
        "offset" INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (job_id, stream, "offset")
    );
    """,
    # 3: reverse lookup of dependencies (settle only the dependents of changed jobs)
    sqlite_dependencies.MIGRATION,
]
