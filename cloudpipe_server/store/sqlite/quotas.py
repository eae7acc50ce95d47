"""SQLite quota store, in the job store's file and on its connection (the backend's one
`database.SqliteDatabase`). Its schema is `schema.QUOTA_MIGRATIONS`, with its own version
table (`quota_schema`), as the secret store has. The job store applies the same
migrations when it initializes (`migrate_quotas`), since its claim joins `account_quotas`.

A set is one `INSERT ... ON CONFLICT (account) DO UPDATE`, or one `DELETE` when both
values go back to the default: of concurrent sets of one account, each replaces the row
whole."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from cloudpipe_server.store._shared import from_ns, to_ns
from cloudpipe_server.store.base import AccountQuota, QuotaStore
from cloudpipe_server.store.sqlite.database import SqliteDatabase
from cloudpipe_server.store.sqlite.schema import QUOTA_MIGRATIONS, QUOTA_VERSION_TABLE

_PUT = """
    INSERT INTO account_quotas (account, max_queued, max_running, updated_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (account) DO UPDATE SET max_queued = excluded.max_queued, max_running = excluded.max_running,
        updated_at = excluded.updated_at
"""


async def migrate_quotas(db: SqliteDatabase) -> None:
    """Create or migrate the quota table (idempotent; the job store calls it too)."""
    await db.connect(QUOTA_MIGRATIONS, version_table=QUOTA_VERSION_TABLE)


def _quota(row: sqlite3.Row) -> AccountQuota:
    return AccountQuota(row["account"], row["max_queued"], row["max_running"], from_ns(row["updated_at"]))


class SqliteQuotaStore(QuotaStore):
    """`QuotaStore` on the SQLite database `db`, which the job store shares."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def initialize(self) -> None:
        await migrate_quotas(self._db)

    async def get_quota(self, account: str) -> AccountQuota:
        def read(conn: sqlite3.Connection) -> AccountQuota:
            row = conn.execute("SELECT * FROM account_quotas WHERE account = ?", (account,)).fetchone()
            return AccountQuota(account) if row is None else _quota(row)

        return await self._db.run(read)

    async def set_quota(
        self, account: str, max_queued: int | None, max_running: int | None, now: datetime
    ) -> AccountQuota:
        if max_queued is None and max_running is None:
            await self.delete_quota(account)
            return AccountQuota(account)

        def put(conn: sqlite3.Connection) -> None:
            conn.execute(_PUT, (account, max_queued, max_running, to_ns(now)))

        await self._db.run(put, write=True)
        return AccountQuota(account, max_queued, max_running, now)

    async def list_quotas(self) -> list[AccountQuota]:
        def read(conn: sqlite3.Connection) -> list[AccountQuota]:
            return [_quota(row) for row in conn.execute("SELECT * FROM account_quotas ORDER BY account")]

        return await self._db.run(read)

    async def delete_quota(self, account: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM account_quotas WHERE account = ?", (account,)).rowcount == 1

        return await self._db.run(delete, write=True)


# The claim's due queued jobs, each account's oldest first, that fit in its running
# allowance: its limit (its `max_running` override, else the default; 0: none) minus
# its PROCESSING jobs. Parameters: now, the default limit, the default limit again.
WITHIN_RUNNING_LIMIT = (
    "SELECT q.id AS id FROM (SELECT id, account, ROW_NUMBER() OVER (PARTITION BY account ORDER BY id) AS n"
    " FROM jobs WHERE status = 'queued' AND (run_after IS NULL OR run_after <= ?)) q"
    " LEFT JOIN (SELECT account, COUNT(*) AS running FROM jobs WHERE status = 'processing' GROUP BY account) r"
    " ON r.account = q.account LEFT JOIN account_quotas o ON o.account = q.account"
    " WHERE COALESCE(o.max_running, ?) <= 0 OR q.n + COALESCE(r.running, 0) <= COALESCE(o.max_running, ?)"
)


def running_limited(conn: sqlite3.Connection, default: int) -> bool:
    """Whether any account has a running limit (in the claim's transaction): the
    default, or an override. Without one, the claim takes the plain oldest jobs."""
    if default > 0:
        return True
    return conn.execute("SELECT 1 FROM account_quotas WHERE max_running > 0 LIMIT 1").fetchone() is not None
