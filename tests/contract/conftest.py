"""Backends for the contract suite. One `stores` fixture, parametrised over every
backend (`backends.BACKENDS`), builds only the backend its parameter names; `store` is
its job store, except in test_schedule_store.py and test_secret_store.py, where it is
its schedule store or its secret store. The PostgreSQL cluster starts on the first
postgres test and stops at session end; every test gets a database of its own."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudpipe_server.store import JobStore, Stores
from tests.contract.backends import BACKENDS, build
from tests.contract.postgres_cluster import PostgresMissing, fresh_database, start_cluster


@pytest.fixture(params=BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """The stores of one backend, on one database, initialized; closed afterwards."""
    built = build(request.param, request, tmp_path)
    await built.initialize()
    yield built
    await built.close()


@pytest.fixture
def store(stores: Stores) -> JobStore:
    """The job store of `stores` (test_schedule_store.py and test_secret_store.py override it)."""
    return stores.jobs


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A superuser URL of a real PostgreSQL: `CLOUDPIPE_TEST_POSTGRES_URL` when set (it must
    allow CREATE DATABASE), else a throwaway cluster started here for the session."""
    external = os.environ.get("CLOUDPIPE_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    try:
        cluster = start_cluster()
    except PostgresMissing as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:  # fail (never skip): every backend that can run here must run
        pytest.fail(missing, pytrace=False)
    try:
        yield cluster.url()
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A database of its own for one test, dropped afterwards."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def mongo_database() -> Iterator[str]:
    """The name of a fresh database on the MongoDB server of CLOUDPIPE_TEST_MONGO_URI,
    dropped afterwards. Only tests that run against a real MongoDB ask for it."""
    import pymongo

    uri = os.environ["CLOUDPIPE_TEST_MONGO_URI"]
    name = f"cloudpipe_test_{secrets.token_hex(6)}"
    yield name
    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(uri) as client:
        client.drop_database(name)
