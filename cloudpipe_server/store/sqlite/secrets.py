"""SQLite secret store, in the job store's file and on its connection (the backend's one
`database.SqliteDatabase`). Its schema is `schema.SECRET_MIGRATIONS`, with its own
version table (`secret_schema`), as the schedule store has: it is a store of its own
beside the job store, which owns `PRAGMA user_version`.

A put is one `INSERT ... ON CONFLICT (account, name) DO UPDATE ... RETURNING`, so of
concurrent puts of one name each replaces the row whole and one row remains.
Re-encryption reads every row and computes every new ciphertext before it writes the
first one, all in one `BEGIN IMMEDIATE` transaction: a transform that raises leaves the
file as it was, and no write of another process lands in between. It keeps the rows'
times: the values did not change, only their encryption."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime

from cloudpipe_server.store._shared import secret_from_row, to_ns
from cloudpipe_server.store.base import SecretStore, StoredSecret
from cloudpipe_server.store.sqlite.database import SqliteDatabase
from cloudpipe_server.store.sqlite.schema import SECRET_MIGRATIONS, SECRET_VERSION_TABLE

_PUT = """
    INSERT INTO secrets (account, name, ciphertext, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (account, name) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at
    RETURNING name, ciphertext, created_at, updated_at
"""
_COLUMNS = "name, ciphertext, created_at, updated_at"


class SqliteSecretStore(SecretStore):
    """`SecretStore` on the SQLite database `db`, which the job store shares."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def initialize(self) -> None:
        await self._db.connect(SECRET_MIGRATIONS, version_table=SECRET_VERSION_TABLE)

    async def put_secret(self, account: str, name: str, ciphertext: bytes, now: datetime) -> StoredSecret:
        def put(conn: sqlite3.Connection) -> StoredSecret:
            [row] = conn.execute(_PUT, (account, name, bytes(ciphertext), to_ns(now), to_ns(now))).fetchall()
            return secret_from_row(row)

        return await self._db.run(put, write=True)

    async def list_secrets(self, account: str) -> list[StoredSecret]:
        def read(conn: sqlite3.Connection) -> list[StoredSecret]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM secrets WHERE account = ? ORDER BY name", (account,))
            return [secret_from_row(row) for row in rows]

        return await self._db.run(read)

    async def get_secrets(self, account: str, names: Sequence[str]) -> dict[str, StoredSecret]:
        wanted = sorted(set(names))

        def read(conn: sqlite3.Connection) -> dict[str, StoredSecret]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM secrets WHERE account = ? AND name IN ({','.join('?' * len(wanted))})",
                (account, *wanted),
            )
            return {row["name"]: secret_from_row(row) for row in rows}

        return await self._db.run(read) if wanted else {}

    async def delete_secret(self, account: str, name: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM secrets WHERE account = ? AND name = ?", (account, name)).rowcount == 1

        return await self._db.run(delete, write=True)

    async def reencrypt_secrets(self, transform: Callable[[bytes], bytes]) -> int:
        def rewrite(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT rowid, ciphertext FROM secrets ORDER BY account, name").fetchall()
            rewritten = [(bytes(transform(bytes(row["ciphertext"]))), row["rowid"]) for row in rows]
            conn.executemany("UPDATE secrets SET ciphertext = ? WHERE rowid = ?", rewritten)
            return len(rewritten)

        return await self._db.run(rewrite, write=True)
