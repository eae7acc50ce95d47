"""Server identities in the PostgreSQL store: one row per CLOUDPIPE_SERVER_ID with its
holder and lease expiry (see `JobStore.hold_identity`). `INSERT ... ON CONFLICT DO
UPDATE ... WHERE` decides atomically, so of concurrent takers one wins."""

from __future__ import annotations

from cloudpipe_server.store.postgres.database import Conn

_HOLD = """
    INSERT INTO server_identities (server_id, holder, expires_at) VALUES (%(id)s, %(holder)s, %(until)s)
    ON CONFLICT (server_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE server_identities.holder IN (excluded.holder, %(replacing)s) OR server_identities.expires_at <= %(now)s
"""


async def hold(conn: Conn, server_id: str, holder: str, now: int, until: int, replacing: str) -> str:
    params = {"id": server_id, "holder": holder, "until": until, "replacing": replacing or holder, "now": now}
    async with conn.transaction():
        await conn.execute(_HOLD, params)
        cursor = await conn.execute("SELECT holder FROM server_identities WHERE server_id = %s", (server_id,))
        row = await cursor.fetchone()
    assert row is not None  # the insert or the conflicting row
    return str(row["holder"])


async def release(conn: Conn, server_id: str, holder: str) -> None:
    await conn.execute("DELETE FROM server_identities WHERE server_id = %s AND holder = %s", (server_id, holder))
