"""The SQLite backend: both stores in one file, on one connection (`database`).
Modules: `database` (connection, threads, transactions, migrations), `schema` (both
stores' migrations), `jobs`, `output` and `dependencies` (the job store), `schedules`."""

from __future__ import annotations

from pathlib import Path

from cloudpipe_server.store.base import Stores
from cloudpipe_server.store.sqlite.database import SqliteDatabase
from cloudpipe_server.store.sqlite.jobs import SqliteJobStore
from cloudpipe_server.store.sqlite.schedules import SqliteScheduleStore


def open_stores(path: str | Path) -> Stores:
    """Both stores on the SQLite file at `path` (":memory:" for a throwaway database)."""
    db = SqliteDatabase(path)
    return Stores(SqliteJobStore(db), SqliteScheduleStore(db), db)


__all__ = ["SqliteDatabase", "SqliteJobStore", "SqliteScheduleStore", "open_stores"]
