"""`open_stores(url)` and `Stores`: one URL registry, the stores of a backend on one
database object, which closing them closes once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cloudpipe_server.errors import InvalidArgument, StoreUnavailable
from cloudpipe_server.store import Stores, open_stores
from tests.contract.backends import postgres
from tests.contract.common import T0, spec
from tests.contract.postgres_cluster import database_url


async def test_the_stores_of_a_backend_share_its_database_and_close_together(stores: Stores) -> None:
    [job_id] = await stores.jobs.submit("alice", [spec()], T0)
    await stores.schedules.create_saved_job("alice", "report", spec(), "", T0)
    await stores.secrets.put_secret("alice", "token", b"x", T0)
    await stores.close()
    with pytest.raises(StoreUnavailable):
        await stores.jobs.get(job_id)
    with pytest.raises(StoreUnavailable):
        await stores.schedules.list_saved_jobs("alice")
    with pytest.raises(StoreUnavailable):
        await stores.secrets.list_secrets("alice")
    await stores.close()  # closing again does nothing (the fixture closes a third time)
    await stores.schedules.close()


async def test_the_postgres_stores_share_one_pool(postgres_url: str) -> None:
    """Today's pool opens one connection and grows on demand: used in turn, the stores
    together hold one connection to the database (two pools held two)."""
    stores = postgres(postgres_url)
    await stores.initialize()
    try:
        await stores.jobs.submit("alice", [spec()], T0)
        await stores.schedules.list_schedules("alice")
        await stores.secrets.list_secrets("alice")
        import psycopg

        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert await cursor.fetchone() == (1,)
    finally:
        await stores.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_a_postgresql_url_opens_both_stores_on_that_database(scheme: str, postgres_url: str) -> None:
    stores = open_stores(database_url(postgres_url, scheme))
    await stores.initialize()
    try:
        [job_id] = await stores.jobs.submit("alice", [spec("via the URL")], T0)
        await stores.schedules.create_saved_job("alice", "report", spec(), "", T0)
    finally:
        await stores.close()
    again = postgres(postgres_url)
    await again.initialize()
    try:
        assert (await again.jobs.get(job_id)).spec.cmd == "via the URL"
        assert [s.name for s in await again.schedules.list_saved_jobs("alice")] == ["report"]
    finally:
        await again.close()


def test_a_mongodb_url_names_the_mongodb_backend() -> None:
    from cloudpipe_server.store.mongodb import MongoJobStore, MongoScheduleStore, MongoSecretStore

    for url in ("mongodb://db.invalid/cloudpipe", "mongodb+srv://db.invalid/cloudpipe"):
        stores = open_stores(url)  # nothing connects before initialize()
        assert isinstance(stores.jobs, MongoJobStore) and isinstance(stores.schedules, MongoScheduleStore)
        assert isinstance(stores.secrets, MongoSecretStore)


def test_an_unknown_url_scheme_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match=r"unsupported store URL 'mysql'; use sqlite:///PATH"):
        open_stores("mysql://db/cloudpipe")
    with pytest.raises(InvalidArgument, match="unsupported store URL 'sqlite'"):
        open_stores("sqlite://relative.db")  # sqlite:/// and an absolute path, or :memory:


def test_drivers_are_imported_only_for_their_scheme() -> None:
    script = (
        "import sys; from cloudpipe_server import app; from cloudpipe_server.store import open_stores;"
        " open_stores('sqlite:///:memory:');"
        " loaded = sorted({'psycopg', 'psycopg_pool', 'pymongo'} & set(sys.modules)); print(loaded)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
