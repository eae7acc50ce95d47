"""Schema of the PostgreSQL backend: `JOB_MIGRATIONS`, `SCHEDULE_MIGRATIONS`,
`SECRET_MIGRATIONS` and `QUOTA_MIGRATIONS`, each applied in order by
`PostgresDatabase.connect` (`database.py`) under its advisory lock, with the applied
version in its own table (`JOB_VERSION_TABLE`, `SCHEDULE_VERSION_TABLE`,
`SECRET_VERSION_TABLE`, `QUOTA_VERSION_TABLE`). Append new migrations; never edit an
applied one."""

from __future__ import annotations

from typing import LiteralString

JOB_VERSION_TABLE = "schema_version"
SCHEDULE_VERSION_TABLE = "schedule_schema_version"
SECRET_VERSION_TABLE = "secret_schema_version"
QUOTA_VERSION_TABLE = "quota_schema_version"

# Keys of the transaction-scoped advisory locks of migrations (any constants unique to Cloudpipe).
MIGRATE_LOCK = 0x436C_6F75_6400_0001
MIGRATE_LOCK_SCHEDULES = 0x436C_6F75_6400_0010
MIGRATE_LOCK_SECRETS = 0x436C_6F75_6400_0020
MIGRATE_LOCK_QUOTAS = 0x436C_6F75_6400_0030

JOB_MIGRATIONS: list[str] = [
    # 1: jobs
    """
    CREATE TABLE jobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        spec JSONB NOT NULL,
        stdin BYTEA NOT NULL DEFAULT '',
        depends_on BIGINT[] NOT NULL DEFAULT '{}',
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        container_started_at BIGINT,
        finished_at BIGINT,
        return_code INTEGER,
        stdout BYTEA NOT NULL DEFAULT '',
        stderr BYTEA NOT NULL DEFAULT '',
        result BYTEA NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        collected JSONB,
        kill_requested BOOLEAN NOT NULL DEFAULT FALSE,
        attempts INTEGER NOT NULL DEFAULT 0,
        container_id TEXT NOT NULL DEFAULT '',
        lease_owner TEXT NOT NULL DEFAULT '',
        lease_expires_at BIGINT
    );
    CREATE INDEX jobs_status_id ON jobs (status, id);
    CREATE INDEX jobs_account_id ON jobs (account, id);
    CREATE INDEX jobs_account_name ON jobs (account, name);
    """,
    # 2: idempotency keys, retry backoff, output chunks of running jobs ("offset" is a
    # reserved word). The ALTERs with constant defaults rewrite no rows.
    """
    ALTER TABLE jobs ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '', ADD COLUMN run_after BIGINT;
    CREATE UNIQUE INDEX jobs_account_idempotency_key ON jobs (account, idempotency_key) WHERE idempotency_key <> '';
    CREATE TABLE job_output (
        job_id BIGINT NOT NULL REFERENCES jobs (id),
        stream SMALLINT NOT NULL,
        "offset" BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (job_id, stream, "offset")
    );
    """,
    # 3: the dependents of a job, among the WAITING ones (settling looks up only those)
    """
    CREATE INDEX jobs_waiting_depends_on ON jobs USING GIN (depends_on) WHERE status = 'waiting';
    """,
    # 4: one live server per CLOUDPIPE_SERVER_ID (identity.py)
    """
    CREATE TABLE server_identities (
        server_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    """,
    # 5: retention finds finished jobs by when they finished (retention.py)
    """
    CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    """,
    # 6: the ended attempts of jobs, the latest ATTEMPTS_KEPT of each (jobs.py: written with
    # the change that ends one; retention.py deletes them with their job)
    """
    CREATE TABLE job_attempts (
        job_id BIGINT NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at BIGINT,
        ended_at BIGINT NOT NULL,
        return_code INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        owner TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, attempt)
    );
    """,
    # 7: an account's counts per status read an index, not every row (QueueStats, Usage)
    """
    CREATE INDEX jobs_account_status ON jobs (account, status);
    """,
]

SCHEDULE_MIGRATIONS: list[LiteralString] = [
    # 1: saved jobs, schedules, fires
    """
    CREATE TABLE saved_jobs (
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        spec JSONB NOT NULL,
        stdin BYTEA NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        PRIMARY KEY (account, name, version)
    );
    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        spec JSONB NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        next_fire_at BIGINT,
        next_due_at BIGINT,
        lease_owner TEXT NOT NULL DEFAULT '',
        lease_expires_at BIGINT,
        UNIQUE (account, name)
    );
    CREATE INDEX schedules_due ON schedules (next_due_at) WHERE NOT paused AND next_due_at IS NOT NULL;
    CREATE TABLE fires (
        schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
        scheduled_at BIGINT NOT NULL,
        account TEXT NOT NULL,
        due_at BIGINT NOT NULL,
        recorded_at BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        job_id BIGINT,
        job_status TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        manual BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (schedule_id, scheduled_at)
    );
    CREATE INDEX fires_open ON fires (scheduled_at) WHERE outcome IN ('pending', 'buffered', 'running');
    """,
]

SECRET_MIGRATIONS: list[LiteralString] = [
    # 1: secrets of accounts, values only as ciphertext (secrets.py). Names compare
    # bytewise (COLLATE "C"), so listing them by name orders them as the other backends do
    # whatever the database's locale.
    """
    CREATE TABLE secrets (
        account TEXT NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        ciphertext BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (account, name)
    );
    """,
]

QUOTA_MIGRATIONS: list[LiteralString] = [
    # 1: the admin's per-account quota overrides (quotas.py); NULL: the server's default.
    # The job store's claim reads it too (jobs.py), so the job store applies these as well.
    """
    CREATE TABLE account_quotas (
        account TEXT PRIMARY KEY,
        max_queued INTEGER,
        max_running INTEGER,
        updated_at BIGINT NOT NULL
    );
    """,
]
