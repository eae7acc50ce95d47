"""Schema of the SQLite backend, every store in one file: `JOB_MIGRATIONS` (applied
version in `PRAGMA user_version`), `SCHEDULE_MIGRATIONS`, `SECRET_MIGRATIONS` and
`QUOTA_MIGRATIONS` (applied versions in the `SCHEDULE_VERSION_TABLE`,
`SECRET_VERSION_TABLE` and `QUOTA_VERSION_TABLE` tables, since the job store owns
user_version), each applied in order by `SqliteDatabase.connect`. Append new
migrations; never edit an applied one."""

from __future__ import annotations

JOB_MIGRATIONS: list[str] = [
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
    """
    CREATE TABLE job_dependencies (
        depends_on INTEGER NOT NULL,
        job_id INTEGER NOT NULL,
        PRIMARY KEY (depends_on, job_id)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO job_dependencies (depends_on, job_id)
        SELECT e.value, jobs.id FROM jobs, json_each(jobs.depends_on) e WHERE jobs.status = 'waiting'
    """,
    # 4: one live server per CLOUDPIPE_SERVER_ID (identity.py)
    """
    CREATE TABLE server_identities (
        server_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: retention finds finished jobs by when they finished (retention.py)
    """
    CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # 6: the ended attempts of jobs, the latest ATTEMPTS_KEPT of each (jobs.py: written with
    # the change that ends one; retention.py deletes them with their job)
    """
    CREATE TABLE job_attempts (
        job_id INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at INTEGER,
        ended_at INTEGER NOT NULL,
        return_code INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        owner TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, attempt)
    ) WITHOUT ROWID;
    """,
    # 7: an account's counts per status read an index, not every row (QueueStats, Usage)
    """
    CREATE INDEX jobs_account_status ON jobs (account, status);
    """,
    # 8: a job's stdin, stdout, stderr and result out of its row, in job_blobs (blobs.py);
    # the row's columns of those names stay empty
    """
    CREATE TABLE job_blobs (
        job_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (job_id, kind)
    );
    INSERT INTO job_blobs (job_id, kind, data) SELECT id, 'stdin', stdin FROM jobs WHERE length(stdin) > 0;
    INSERT INTO job_blobs (job_id, kind, data) SELECT id, 'stdout', stdout FROM jobs WHERE length(stdout) > 0;
    INSERT INTO job_blobs (job_id, kind, data) SELECT id, 'stderr', stderr FROM jobs WHERE length(stderr) > 0;
    INSERT INTO job_blobs (job_id, kind, data) SELECT id, 'result', result FROM jobs WHERE length(result) > 0;
    UPDATE jobs SET stdin = x'', stdout = x'', stderr = x'', result = x''
        WHERE length(stdin) + length(stdout) + length(stderr) + length(result) > 0;
    """,
]

SCHEDULE_VERSION_TABLE = "schedule_schema"

SCHEDULE_MIGRATIONS: list[str] = [
    # 1: saved jobs, schedules, fires
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

SECRET_VERSION_TABLE = "secret_schema"

SECRET_MIGRATIONS: list[str] = [
    # 1: secrets of accounts, values only as ciphertext (secrets.py); a rowid table, as
    # values of up to tens of KiB do not suit WITHOUT ROWID
    """
    CREATE TABLE secrets (
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (account, name)
    );
    """,
]

QUOTA_VERSION_TABLE = "quota_schema"

QUOTA_MIGRATIONS: list[str] = [
    # 1: the admin's per-account quota overrides (quotas.py); NULL: the server's default.
    # The job store's claim reads it too (jobs.py), so the job store applies these as well.
    """
    CREATE TABLE account_quotas (
        account TEXT PRIMARY KEY,
        max_queued INTEGER,
        max_running INTEGER,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
]
