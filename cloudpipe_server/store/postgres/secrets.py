"""PostgreSQL secret store (psycopg 3, async, on the pool it shares with the job store:
the backend's one `database.PostgresDatabase`). Its schema is `schema.SECRET_MIGRATIONS`
with its own version table (`secret_schema_version`) and migration lock, as the
schedule store has: it is a store of its own, initialized on its own.

A put is one `INSERT ... ON CONFLICT (account, name) DO UPDATE ... RETURNING`, which
PostgreSQL makes atomic: of concurrent puts of one name each replaces the row whole and
one row remains. Re-encryption is one transaction that first takes `SHARE ROW
EXCLUSIVE` on the table (reads go on; puts, deletes and another re-encryption wait), so
no row is put or changed between its read and its rewrite and every row of the table
is rewritten; the new ciphertexts are computed in a worker thread (off the event loop)
before the first update, and a transform that raises rolls the transaction back. It
keeps the rows' times: the values did not change, only their encryption."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import LiteralString

from cloudpipe_server.store._shared import secret_from_row, to_ns
from cloudpipe_server.store.base import SecretStore, StoredSecret
from cloudpipe_server.store.postgres.database import PostgresDatabase, fetch_all, fetch_one
from cloudpipe_server.store.postgres.schema import MIGRATE_LOCK_SECRETS, SECRET_MIGRATIONS, SECRET_VERSION_TABLE

_PUT: LiteralString = """
    INSERT INTO secrets (account, name, ciphertext, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (account, name) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at
    RETURNING name, ciphertext, created_at, updated_at
"""
_COLUMNS: LiteralString = "name, ciphertext, created_at, updated_at"


class PostgresSecretStore(SecretStore):
    """`SecretStore` on the PostgreSQL database `db`, whose pool the job store shares."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def initialize(self) -> None:
        await self._db.connect(SECRET_MIGRATIONS, version_table=SECRET_VERSION_TABLE, lock=MIGRATE_LOCK_SECRETS)

    async def put_secret(self, account: str, name: str, ciphertext: bytes, now: datetime) -> StoredSecret:
        async with self._db.connection() as conn:
            row = await fetch_one(conn, _PUT, (account, name, bytes(ciphertext), to_ns(now), to_ns(now)))
        assert row is not None  # the inserted or the updated row
        return secret_from_row(row)

    async def list_secrets(self, account: str) -> list[StoredSecret]:
        rows = await self._db.rows(f"SELECT {_COLUMNS} FROM secrets WHERE account = %s ORDER BY name", (account,))
        return [secret_from_row(row) for row in rows]

    async def get_secrets(self, account: str, names: Sequence[str]) -> dict[str, StoredSecret]:
        if not names:
            return {}
        query: LiteralString = f"SELECT {_COLUMNS} FROM secrets WHERE account = %s AND name = ANY(%s)"
        rows = await self._db.rows(query, (account, sorted(set(names))))
        return {row["name"]: secret_from_row(row) for row in rows}

    async def delete_secret(self, account: str, name: str) -> bool:
        async with self._db.connection() as conn:
            cursor = await conn.execute("DELETE FROM secrets WHERE account = %s AND name = %s", (account, name))
            return cursor.rowcount == 1

    async def reencrypt_secrets(self, transform: Callable[[bytes], bytes]) -> int:
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute("LOCK TABLE secrets IN SHARE ROW EXCLUSIVE MODE")
            rows = await fetch_all(conn, "SELECT account, name, ciphertext FROM secrets ORDER BY account, name")
            keys = [(row["account"], row["name"]) for row in rows]
            olds = [bytes(row["ciphertext"]) for row in rows]
            news = await asyncio.to_thread(lambda: [bytes(transform(old)) for old in olds])
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "UPDATE secrets SET ciphertext = %s WHERE account = %s AND name = %s",
                    [(new, account, name) for new, (account, name) in zip(news, keys, strict=True)],
                )
        return len(rows)
