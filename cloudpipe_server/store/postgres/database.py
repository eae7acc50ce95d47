"""The PostgreSQL database of the backend (psycopg 3, async): one pool of autocommit
connections with dict rows, shared by the job store, the schedule store and the secret
store, driver failures mapped to `StoreUnavailable`, and schema migrations.

Migrations are short lists of SQL scripts, applied by `PostgresDatabase.connect` in one
transaction that first takes a transaction-scoped advisory lock, with the applied
version in a table of each store's own. That is all a handful of tables needs: no
migration tool to install and configure, and servers starting together cannot migrate
twice (the second waits for the lock, then finds nothing to do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from cloudpipe_server.errors import StoreUnavailable

Conn = AsyncConnection[DictRow]
Query = LiteralString | bytes  # bytes only for SQL assembled from literals


class PostgresDatabase:
    """A pool of at most `max_connections` connections to the database at `url` (a
    libpq URL or conninfo string). `name` names the store in the error of a closed
    database ("the {name} is closed")."""

    def __init__(self, url: str, *, max_connections: int, name: str = "PostgreSQL store") -> None:
        self._url = url
        self._max_connections = max_connections
        self._name = name
        self._pool: AsyncConnectionPool[Conn] | None = None

    async def connect(self, migrations: Sequence[str], *, version_table: str, lock: int) -> None:
        """Open the pool (once: a second call only migrates), waiting up to 30 seconds
        for its first connection, then apply the `migrations` the database lacks.

        The migrations run in one transaction holding the advisory lock `lock`: all of
        them commit, or none. `version_table` (created when missing) gets one row per
        applied migration, the highest being the database's version.

        Raises `StoreUnavailable` when no connection can be made or the database goes
        away meanwhile; an error in a migration's SQL goes through as psycopg raised it."""
        if self._pool is None:
            pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                self._url,
                connection_class=AsyncConnection[DictRow],
                kwargs={"autocommit": True, "row_factory": dict_row},
                min_size=1,
                max_size=self._max_connections,
                open=False,
            )
            try:
                await pool.open(wait=True, timeout=30)
            except psycopg.OperationalError as exc:
                await pool.close()
                raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
            self._pool = pool
        table = sql.Identifier(version_table)
        async with self.connection() as conn, conn.transaction():
            await advisory_lock(conn, lock)
            await conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (version INTEGER NOT NULL)").format(table))
            cursor = await conn.execute(sql.SQL("SELECT COALESCE(MAX(version), 0) AS version FROM {}").format(table))
            row = await cursor.fetchone()
            version = int(row["version"]) if row else 0
            for number, script in enumerate(migrations[version:], start=version + 1):
                await conn.execute(script.encode())  # bytes: several statements, no parameters
                await conn.execute(sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(table), (number,))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled autocommit connection for the block: each statement is its own
        transaction; several that must be atomic need `conn.transaction()`.

        Raises `StoreUnavailable` when the database is closed (or was never connected)
        and for `psycopg.OperationalError` (a lost connection, no free connection in
        time, a deadlock), whether raised by the pool or in the block; whatever else the
        block raises goes through unchanged."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable(f"the {self._name} is closed")
        try:
            async with pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:  # includes PoolTimeout and deadlocks
            raise StoreUnavailable(f"PostgreSQL store error: {exc}") from exc

    async def rows(self, query: Query, params: Sequence[Any] = ()) -> list[DictRow]:
        """The rows of one statement, run on a connection of its own (so it is one
        transaction). Raises as `connection` does."""
        async with self.connection() as conn:
            return await fetch_all(conn, query, params)

    async def close(self) -> None:
        """Close the pool; later operations raise `StoreUnavailable`. Closing a closed
        database does nothing."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def fetch_one(conn: Conn, query: Query, params: Sequence[Any] = ()) -> DictRow | None:
    """The first row of `query`'s result, or None."""
    cursor = await conn.execute(query, params)
    return await cursor.fetchone()


async def fetch_all(conn: Conn, query: Query, params: Sequence[Any] = ()) -> list[DictRow]:
    cursor = await conn.execute(query, params)
    return await cursor.fetchall()


async def advisory_lock(conn: Conn, key: int) -> None:
    """Take the advisory lock `key` until the end of `conn`'s transaction (waiting for
    it); in autocommit, that is the end of this statement."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
