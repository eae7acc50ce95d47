"""PostgreSQL quota store (psycopg 3, async, on the pool it shares with the job store:
the backend's one `database.PostgresDatabase`). Its schema is `schema.QUOTA_MIGRATIONS`
with its own version table (`quota_schema_version`) and migration lock, as the secret
store has. The job store applies the same migrations when it initializes
(`migrate_quotas`), since its claim joins `account_quotas`.

A set is one `INSERT ... ON CONFLICT (account) DO UPDATE`, or one `DELETE` when both
values go back to the default; PostgreSQL makes each atomic, so of concurrent sets of
one account each replaces the row whole."""

from __future__ import annotations

from datetime import datetime
from typing import Any, LiteralString

from cloudpipe_server.store._shared import from_ns, to_ns
from cloudpipe_server.store.base import AccountQuota, QuotaStore
from cloudpipe_server.store.postgres.database import Conn, PostgresDatabase, fetch_one
from cloudpipe_server.store.postgres.schema import MIGRATE_LOCK_QUOTAS, QUOTA_MIGRATIONS, QUOTA_VERSION_TABLE

_PUT: LiteralString = """
    INSERT INTO account_quotas (account, max_queued, max_running, updated_at) VALUES (%s, %s, %s, %s)
    ON CONFLICT (account) DO UPDATE SET max_queued = excluded.max_queued, max_running = excluded.max_running,
        updated_at = excluded.updated_at
"""

# The claim's due queued jobs within each account's running allowance: its limit (its
# `max_running` override, else the default; 0: none) minus its PROCESSING jobs, oldest
# first, locked. Parameters: now, the default limit twice, the claim's limit.
DUE_WITHIN_RUNNING_LIMIT: LiteralString = (
    " WHERE id IN (SELECT q.id FROM (SELECT id, account, ROW_NUMBER() OVER (PARTITION BY account ORDER BY id) AS n"
    " FROM jobs WHERE status = 'queued' AND (run_after IS NULL OR run_after <= %s)) q"
    " LEFT JOIN (SELECT account, COUNT(*) AS running FROM jobs WHERE status = 'processing' GROUP BY account) r"
    " ON r.account = q.account LEFT JOIN account_quotas o ON o.account = q.account"
    " WHERE COALESCE(o.max_running, %s) <= 0 OR q.n + COALESCE(r.running, 0) <= COALESCE(o.max_running, %s)"
    " ORDER BY q.id LIMIT %s) AND status = 'queued' RETURNING *"
)


async def migrate_quotas(db: PostgresDatabase) -> None:
    """Create or migrate the quota table (idempotent; the job store calls it too)."""
    await db.connect(QUOTA_MIGRATIONS, version_table=QUOTA_VERSION_TABLE, lock=MIGRATE_LOCK_QUOTAS)


async def running_limited(conn: Conn, default: int) -> bool:
    """Whether any account has a running limit: the default, or an override. Without
    one, the claim takes the plain oldest jobs (SKIP LOCKED, no turns)."""
    if default > 0:
        return True
    return await fetch_one(conn, "SELECT 1 FROM account_quotas WHERE max_running > 0 LIMIT 1") is not None


def _quota(row: dict[str, Any]) -> AccountQuota:
    return AccountQuota(row["account"], row["max_queued"], row["max_running"], from_ns(row["updated_at"]))


class PostgresQuotaStore(QuotaStore):
    """`QuotaStore` on the PostgreSQL database `db`, whose pool the job store shares."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def initialize(self) -> None:
        await migrate_quotas(self._db)

    async def get_quota(self, account: str) -> AccountQuota:
        rows = await self._db.rows("SELECT * FROM account_quotas WHERE account = %s", (account,))
        return _quota(rows[0]) if rows else AccountQuota(account)

    async def set_quota(
        self, account: str, max_queued: int | None, max_running: int | None, now: datetime
    ) -> AccountQuota:
        if max_queued is None and max_running is None:
            await self.delete_quota(account)
            return AccountQuota(account)
        await self._db.rows(_PUT + " RETURNING account", (account, max_queued, max_running, to_ns(now)))
        return AccountQuota(account, max_queued, max_running, now)

    async def list_quotas(self) -> list[AccountQuota]:
        rows = await self._db.rows('SELECT * FROM account_quotas ORDER BY account COLLATE "C"')
        return [_quota(row) for row in rows]

    async def delete_quota(self, account: str) -> bool:
        rows = await self._db.rows("DELETE FROM account_quotas WHERE account = %s RETURNING account", (account,))
        return bool(rows)
