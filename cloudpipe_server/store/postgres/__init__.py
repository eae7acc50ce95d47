"""The PostgreSQL backend (psycopg 3, async): both stores on one database, sharing one
connection pool (`database`). Modules: `database` (pool, error mapping, migrations),
`schema` (both stores' migrations), `jobs`, `output` and `dependencies` (the job store),
`schedules`."""

from __future__ import annotations

from cloudpipe_server.store.base import Stores
from cloudpipe_server.store.postgres.database import PostgresDatabase
from cloudpipe_server.store.postgres.jobs import PostgresJobStore
from cloudpipe_server.store.postgres.schedules import PostgresScheduleStore


def open_stores(url: str, *, max_connections: int = 10) -> Stores:
    """Both stores on the database at `url` (a libpq URL or conninfo string,
    `postgresql://user:password@host:5432/dbname`), sharing a pool of at most
    `max_connections` connections."""
    db = PostgresDatabase(url, max_connections=max_connections)
    return Stores(PostgresJobStore(db), PostgresScheduleStore(db), db)


__all__ = ["PostgresDatabase", "PostgresJobStore", "PostgresScheduleStore", "open_stores"]
