"""The SQLite backend: every store in one file, on one connection (`database`).
Modules: `database` (connection, threads, transactions, migrations), `schema` (every
store's migrations), `jobs`, `output` and `dependencies` (the job store), `schedules`,
`secrets`."""

from __future__ import annotations

from pathlib import Path

from cloudpipe_server.store.base import Stores
from cloudpipe_server.store.sqlite.database import SqliteDatabase
from cloudpipe_server.store.sqlite.jobs import SqliteJobStore
from cloudpipe_server.store.sqlite.quotas import SqliteQuotaStore
from cloudpipe_server.store.sqlite.schedules import SqliteScheduleStore
from cloudpipe_server.store.sqlite.secrets import SqliteSecretStore


def open_stores(path: str | Path) -> Stores:
    """Every store on the SQLite file at `path` (":memory:" for a throwaway database)."""
    db = SqliteDatabase(path)
    return Stores(SqliteJobStore(db), SqliteScheduleStore(db), SqliteSecretStore(db), db, SqliteQuotaStore(db))


__all__ = [
    "SqliteDatabase",
    "SqliteJobStore",
    "SqliteQuotaStore",
    "SqliteScheduleStore",
    "SqliteSecretStore",
    "open_stores",
]
