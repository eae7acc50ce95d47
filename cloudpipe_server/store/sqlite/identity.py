"""Server identities in the SQLite store: one row per CLOUDPIPE_SERVER_ID with its
holder and lease expiry (see `JobStore.hold_identity`). Every function here runs inside
the caller's write transaction (`SqliteDatabase.run(write=True)`)."""

from __future__ import annotations

import sqlite3

# Parameters: server id, holder, until, the holder replaced (or the holder), now.
_HOLD = """
    INSERT INTO server_identities (server_id, holder, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (server_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE server_identities.holder IN (excluded.holder, ?) OR server_identities.expires_at <= ?
"""


def hold(conn: sqlite3.Connection, server_id: str, holder: str, now: int, until: int, replacing: str) -> str:
    conn.execute(_HOLD, (server_id, holder, until, replacing or holder, now))
    row = conn.execute("SELECT holder FROM server_identities WHERE server_id = ?", (server_id,)).fetchone()
    return str(row["holder"])


def release(conn: sqlite3.Connection, server_id: str, holder: str) -> None:
    conn.execute("DELETE FROM server_identities WHERE server_id = ? AND holder = ?", (server_id, holder))
