"""The SQLite plumbing shared by the job, schedule and account stores: one connection
to one file (the job store and the schedule store of one file share it), used from
worker threads under a lock, and the schema migrations.

The file runs in WAL mode with `synchronous=NORMAL`: a crash of any process loses
nothing committed, only a power loss can drop the last commits. `foreign_keys` is on.
Writes begin with `BEGIN IMMEDIATE`, which takes the file's write lock up front, so a
write transaction is atomic across every process sharing the file (and waits up to 30
seconds for the lock instead of failing at its first write).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from cloudpipe_common.errors import StoreUnavailable

T = TypeVar("T")


class SqliteDatabase:
    """One connection to the SQLite file at `path` (":memory:" for a throwaway database).

    `name` names the store in the error of a closed database ("the {name} is closed");
    `error_prefix` starts the message of a `StoreUnavailable` for a driver error."""

    def __init__(
        self, path: str | Path, *, name: str = "SQLite store", error_prefix: str = "SQLite store error"
    ) -> None:
        self._path = str(path)
        self._name = name
        self._error_prefix = error_prefix
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    async def connect(self, migrations: Sequence[str], *, version_table: str | None = None) -> None:
        """Open the file (creating its directory) unless it is open already (the other
        store on this database opened it), then apply the `migrations` it lacks, all in
        one write transaction: servers starting together cannot migrate twice, and a
        failed migration leaves the file as it was. Each migration is a script of
        statements separated by ";" (so no ";" inside a statement).

        The applied version lives in `PRAGMA user_version`, or, with `version_table`, in
        a one-row table of that name (for a second store in a file whose user_version
        another store owns); that row is rewritten to `len(migrations)` on every start.

        Raises `sqlite3.Error` as it is (a store that cannot open is a start-up failure)."""

        def migrate(conn: sqlite3.Connection) -> None:
            if version_table is None:
                _migrate_user_version(conn, migrations)
            else:
                _migrate_table(conn, migrations, version_table)

        def connect() -> None:
            with self._lock:
                opened = self._conn is None
                conn = self._open() if self._conn is None else self._conn
                try:
                    _transaction(conn, "BEGIN IMMEDIATE", migrate)
                except BaseException:
                    if opened:  # a database that fails its first migration stays closed
                        conn.close()
                    raise
                self._conn = conn

        await asyncio.to_thread(connect)

    def _open(self) -> sqlite3.Connection:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            _enter_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = False, snapshot: bool = False) -> T:
        """`fn(conn)` in a worker thread, holding the connection's lock, and its result.

        With `write`, `fn` runs in one write transaction (`BEGIN IMMEDIATE`): all of its
        statements commit together or, when it raises, none does. With `snapshot`, in a
        read transaction (`BEGIN`): several reads that must agree. Otherwise each of its
        statements commits on its own (autocommit).

        Raises `StoreUnavailable` when the database is closed (or was never connected) and
        for `sqlite3.OperationalError` (a lock not granted in time, a full disk, an I/O
        error); whatever else `fn` raises goes through unchanged, after the rollback."""
        begin = "BEGIN IMMEDIATE" if write else "BEGIN" if snapshot else ""
        return await asyncio.to_thread(self._locked, fn, begin)

    def _locked(self, fn: Callable[[sqlite3.Connection], T], begin: str) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreUnavailable(f"the {self._name} is closed")
            try:
                return _transaction(conn, begin, fn) if begin else fn(conn)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"{self._error_prefix}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection (waiting for a running operation); later operations raise
        `StoreUnavailable`. Closing a closed database does nothing."""

        def close() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(close)


def _transaction(conn: sqlite3.Connection, begin: str, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn(conn)` between `begin` and COMMIT; rolled back when it raises."""
    conn.execute(begin)
    try:
        value = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return value


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in filter(str.strip, script.split(";")):
        conn.execute(statement)


def _migrate_user_version(conn: sqlite3.Connection, migrations: Sequence[str]) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(migrations[version:], start=version + 1):
        _execute_script(conn, script)
        conn.execute(f"PRAGMA user_version = {number}")


def _migrate_table(conn: sqlite3.Connection, migrations: Sequence[str], table: str) -> None:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
    row = conn.execute(f"SELECT version FROM {table}").fetchone()
    version = row[0] if row else 0
    for script in migrations[version:]:
        _execute_script(conn, script)
    if len(migrations) > version:  # never write the version down: a newer server may have migrated further
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} VALUES (?)", (len(migrations),))


_WAL_WAIT_SECONDS = 30.0


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode. Switching needs the file to itself, and SQLite answers
    "database is locked" at once, without waiting as for a lock, while another process
    opens the same new file (servers starting together on one data dir): so try again
    for a while, as a lock would be waited for."""
    deadline = time.monotonic() + _WAL_WAIT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
