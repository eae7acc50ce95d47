"""The PostgreSQL backend (psycopg 3, async): every store on one database, sharing one
connection pool (`database`). Modules: `database` (pool, error mapping, migrations),
`schema` (every store's migrations), `jobs`, `output` and `dependencies` (the job
store), `schedules`, `secrets`."""

from __future__ import annotations

from cloudpipe_server.store.base import Stores
from cloudpipe_server.store.postgres.database import PostgresDatabase
from cloudpipe_server.store.postgres.jobs import PostgresJobStore
from cloudpipe_server.store.postgres.quotas import PostgresQuotaStore
from cloudpipe_server.store.postgres.schedules import PostgresScheduleStore
from cloudpipe_server.store.postgres.secrets import PostgresSecretStore


def open_stores(url: str, *, max_connections: int = 10) -> Stores:
    """Every store on the database at `url` (a libpq URL or conninfo string,
    `postgresql://user:password@host:5432/dbname`), sharing a pool of at most
    `max_connections` connections."""
    db = PostgresDatabase(url, max_connections=max_connections)
    return Stores(PostgresJobStore(db), PostgresScheduleStore(db), PostgresSecretStore(db), db, PostgresQuotaStore(db))


__all__ = [
    "PostgresDatabase",
    "PostgresJobStore",
    "PostgresQuotaStore",
    "PostgresScheduleStore",
    "PostgresSecretStore",
    "open_stores",
]
