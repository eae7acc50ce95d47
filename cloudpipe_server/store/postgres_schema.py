"""Schema of the PostgreSQL store: `MIGRATIONS`, applied in order by
`PostgresDatabase.connect` (`postgres_db.py`) under `MIGRATE_LOCK`, with the applied
version in the `schema_version` table. Append new migrations; never edit an applied one."""

from __future__ import annotations

MIGRATIONS: list[str] = [
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
]

# Key of the transaction-scoped advisory lock of migrations (any constant unique to Cloudpipe).
MIGRATE_LOCK = 0x436C_6F75_6400_0001
