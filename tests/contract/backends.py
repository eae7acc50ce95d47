"""Building the backends of the contract suite: one name per backend, and the `Stores`
(job store and schedule store on one database object) each name opens. Driver imports
stay inside the builders, so a test builds, and imports, only the backend it names.

With no MongoDB server on this machine, the mongodb backend runs against mongomock: an
in-memory double of pymongo, used only because no server can run here (see
mongomock_double.py). Its test ids say so. Set CLOUDPIPE_TEST_MONGO_URI to run the same
tests against a real server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cloudpipe_server.store import Stores, open_stores
from tests.contract.mongomock_double import atomic_writes

MONGO_URI = os.environ.get("CLOUDPIPE_TEST_MONGO_URI", "")
MONGO = pytest.param("mongodb", id="mongodb" if MONGO_URI else "mongodb-mongomock-double")
BACKENDS = ["sqlite", "postgres", MONGO]

# Backends that several processes can share: mongodb only with a real server, since
# mongomock lives inside one process.
PROCESS_BACKENDS = ["sqlite", "postgres", *(["mongodb"] if MONGO_URI else [])]


def build(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    """Fresh stores of backend `kind` for one test (not yet initialized): a file in
    `tmp_path`, a database of its own on the session's PostgreSQL, a fresh database on
    the real MongoDB server or a fresh mongomock client (its writes made atomic, as a
    server's are, while the test runs)."""
    if kind == "sqlite":
        return open_stores(f"sqlite:///{tmp_path / 'jobs.db'}")
    if kind == "postgres":
        return postgres(request.getfixturevalue("postgres_url"))
    if kind == "mongodb":
        if MONGO_URI:
            return mongodb(MONGO_URI, database=request.getfixturevalue("mongo_database"))
        writes = atomic_writes()
        writes.__enter__()
        request.addfinalizer(lambda: writes.__exit__(None, None, None))
        return mongomock_stores()
    raise AssertionError(f"unknown backend {kind}")


def shared_target(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that stores opened by `open_shared` (in this process or others) share."""
    fixture = {"postgres": "postgres_url", "mongodb": "mongo_database"}.get(kind)
    return request.getfixturevalue(fixture) if fixture else str(tmp_path / "shared.db")


def open_shared(kind: str, target: str) -> Stores:
    """Stores of their own on the shared database `target` (of `shared_target`)."""
    if kind == "sqlite":
        return open_stores(f"sqlite:///{target}")
    if kind == "postgres":
        return postgres(target)
    if kind == "mongodb":
        return mongodb(MONGO_URI, database=target)
    raise AssertionError(f"unknown backend {kind}")


def postgres(conninfo: str) -> Stores:
    """Stores on the PostgreSQL database of `conninfo` (a conninfo string, as the
    fixtures give, or a URL)."""
    from cloudpipe_server.store import postgres

    return postgres.open_stores(conninfo)


def mongodb(url: str, **options: Any) -> Stores:
    from cloudpipe_server.store import mongodb

    return mongodb.open_stores(url, **options)


def mongomock_stores(client: Any = None, *, database: str | None = None, transactions: bool = False) -> Stores:
    """Stores on a mongomock client (the double; a fresh client unless given)."""
    import mongomock

    client = client if client is not None else mongomock.MongoClient()
    return mongodb("mongodb://mongomock", client=client, database=database, transactions=transactions)
