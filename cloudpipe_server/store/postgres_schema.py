"""Schema of the PostgreSQL store: `MIGRATIONS`, applied in order by `migrate` (see the
`postgres` module docstring). Append new migrations; never edit an applied one."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import DictRow

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
]

# Key of the transaction-scoped advisory lock (any constant unique to Cloudpipe).
_MIGRATE_LOCK = 0x436C_6F75_6400_0001


async def migrate(conn: AsyncConnection[DictRow]) -> None:
    """Apply the migrations the database lacks, in one transaction under an advisory lock."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
        row = await cursor.fetchone()
        version = int(row["version"]) if row else 0
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(script.encode())  # bytes: several statements, no parameters
            await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
