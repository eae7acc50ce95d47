"""`open_stores(url)`: the one place a store URL picks its backend. Each backend package
is imported only when its scheme is used, so psycopg and pymongo stay optional."""

from __future__ import annotations

from collections.abc import Callable

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.store.base import Stores


def _sqlite(url: str) -> Stores:
    from cloudpipe_server.store import sqlite

    return sqlite.open_stores(url[len("sqlite:///") :] if url != "sqlite:///:memory:" else ":memory:")


def _postgres(url: str) -> Stores:
    from cloudpipe_server.store import postgres

    return postgres.open_stores(url)


def _mongodb(url: str) -> Stores:
    from cloudpipe_server.store import mongodb

    return mongodb.open_stores(url)


# URL prefix -> the backend's opener. A new backend adds its line here.
BACKENDS: dict[str, Callable[[str], Stores]] = {
    "sqlite:///": _sqlite,
    "postgresql://": _postgres,
    "postgres://": _postgres,
    "mongodb://": _mongodb,
    "mongodb+srv://": _mongodb,
}


def open_stores(url: str) -> Stores:
    """The job store, the schedule store and the secret store for a URL, on one shared
    database object (not yet connected: call `initialize()`): `sqlite:///absolute/path.db`
    (or `sqlite:///:memory:`), `postgresql://user:password@host/dbname` (or
    `postgres://...`), or `mongodb://host/dbname` (database `cloudpipe` when the URL
    names none). Raises InvalidArgument for any other URL."""
    for prefix, opener in BACKENDS.items():
        if url.startswith(prefix):
            return opener(url)
    raise InvalidArgument(
        f"CLOUDPIPE_STORE_URL: unsupported store URL {url.split(':')[0]!r};"
        " use sqlite:///PATH, postgresql://... or mongodb://..."
    )
