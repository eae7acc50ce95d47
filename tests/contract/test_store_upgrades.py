"""The store contracts, upgrades: databases written by earlier schema versions (of the job
store, and of every store before the secret store arrived)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

from cloudpipe_server.models import JobQuery, JobStatus, Outcome, Stream
from cloudpipe_server.store import JobStore, Stores, open_stores, to_ns
from tests.contract.backends import mongomock_stores, postgres
from tests.contract.common import LEASE, T0, out, spec
from tests.contract.mongomock_double import atomic_writes

OLD_SPEC = json.dumps({"cmd": "echo old", "name": "old", "restartable": True})  # as schema 1 stored it


def sqlite_at(path: Path, version: int) -> sqlite3.Connection:
    """A job database written by the first `version` migrations (a connection to fill it;
    the caller closes it)."""
    from cloudpipe_server.store.sqlite.schema import JOB_MIGRATIONS

    conn = sqlite3.connect(path)
    for script in JOB_MIGRATIONS[:version]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


async def test_sqlite_database_at_schema_1_upgrades_and_keeps_its_jobs(tmp_path: Path) -> None:
    from cloudpipe_server.store.sqlite.schema import JOB_MIGRATIONS as MIGRATIONS

    path = tmp_path / "old.db"
    with closing(sqlite_at(path, 1)) as conn, conn:
        conn.execute(
            "INSERT INTO jobs (account, name, status, spec, created_at) VALUES ('alice', 'old', 'queued', ?, ?)",
            (OLD_SPEC, to_ns(T0)),
        )
    backend = open_stores(f"sqlite:///{path}").jobs
    await backend.initialize()
    try:
        await _old_job_works_after_the_upgrade(backend)
    finally:
        await backend.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_sqlite_waiting_jobs_stored_before_the_upgrade_still_settle(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite_at(path, 2)) as conn, conn:
        for status, depends_on in (("processing", "[]"), ("waiting", "[1]"), ("waiting", "[2]")):
            conn.execute(
                "INSERT INTO jobs (account, status, spec, depends_on, created_at, lease_owner)"
                " VALUES ('alice', ?, '{\"cmd\": \"x\"}', ?, ?, 'd1')",
                (status, depends_on, to_ns(T0)),
            )
    backend = open_stores(f"sqlite:///{path}").jobs
    await backend.initialize()
    try:
        assert await backend.finish(1, "d1", Outcome(JobStatus.KILLED, T0))
        assert [(await backend.get(i)).status for i in (2, 3)] == [JobStatus.ERROR, JobStatus.ERROR]
    finally:
        await backend.close()


async def test_postgres_database_at_schema_1_upgrades_and_keeps_its_jobs(postgres_url: str) -> None:
    import psycopg

    from cloudpipe_server.store.postgres.schema import JOB_MIGRATIONS as MIGRATIONS

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await conn.execute(MIGRATIONS[0].encode())
        await conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        await conn.execute(
            "INSERT INTO jobs (account, name, status, spec, created_at) VALUES ('alice', 'old', 'queued', %s, %s)",
            (OLD_SPEC, to_ns(T0)),
        )
    backend = postgres(postgres_url).jobs
    await backend.initialize()
    try:
        await _old_job_works_after_the_upgrade(backend)
    finally:
        await backend.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        row = await (await conn.execute("SELECT MAX(version) FROM schema_version")).fetchone()
        assert row == (len(MIGRATIONS),)


async def test_mongodb_jobs_stored_before_the_upgrade_still_work() -> None:
    """MongoDB has no schema: documents written before these fields existed lack them."""
    import mongomock

    client: Any = mongomock.MongoClient()
    old = {"_id": 1, "account": "alice", "name": "old", "status": "queued", "depends_on": [], "created_at": to_ns(T0)}
    old |= {"spec": {"cmd": "echo old", "name": "old", "restartable": True, "env": [], "tags": []}, "stdin": b""}
    old |= dict.fromkeys(["started_at", "container_started_at", "finished_at", "return_code", "collected"])
    old |= {"reason": "", "kill_requested": False, "attempts": 0, "container_id": "", "lease_owner": ""}
    old |= {"lease_expires_at": None, "stdout": b"", "stderr": b"", "result": b""}
    client.cloudpipe.jobs.insert_one(old)
    client.cloudpipe.counters.insert_one({"_id": "jobs", "seq": 1})
    backend = mongomock_stores(client, database="cloudpipe").jobs
    await backend.initialize()
    with atomic_writes():
        ids = await _old_job_works_after_the_upgrade(backend)
    await backend.submit("alice", [spec("no key"), spec("no key")], T0)
    again = mongomock_stores(client, database="cloudpipe").jobs
    await again.initialize()  # a second server starting on the populated database
    assert await again.submit("alice", [spec("new", idempotency_key="k")], T0) == ids[:1]
    await backend.close()


async def _old_job_works_after_the_upgrade(backend: JobStore) -> list[int]:
    [old] = await backend.list_jobs("alice", JobQuery())
    assert old.spec.cmd == "echo old" and old.spec.idempotency_key == "" and old.run_after is None
    [claimed] = await backend.claim("d1", T0, LEASE, 1)
    assert claimed.id == old.id and claimed.attempts == 1
    assert await backend.append_output(old.id, "d1", [out(0, b"still works")])
    assert (await backend.get(old.id)).stdout == b"still works"
    [requeued] = await backend.reap_expired(T0 + LEASE * 2, max_attempts=3)
    assert requeued.run_after == T0 + LEASE * 2 + timedelta(seconds=1)
    ids = await backend.submit("alice", [spec("new", idempotency_key="k"), spec("new", idempotency_key="k")], T0)
    assert ids[0] == ids[1] > old.id
    return ids


# -- the secret store arriving on databases of the version before it -------------------------


async def _previous_version(stores: Stores) -> None:
    """What a server of the version before the secret store left: its `Stores.initialize`
    migrated the job store and the schedule store only (their migrations have not changed
    since), and stored a job and a saved job."""
    await stores.jobs.initialize()
    await stores.schedules.initialize()
    await stores.jobs.submit("alice", [spec("from before")], T0)
    await stores.schedules.create_saved_job("alice", "report", spec("saved before"), "", T0)


async def _secrets_work_and_the_rest_is_kept(stores: Stores) -> None:
    await stores.initialize()
    await stores.initialize()  # the next start finds nothing to do
    [old] = await stores.jobs.list_jobs("alice", JobQuery())
    assert old.spec.cmd == "from before"
    assert (await stores.schedules.get_saved_job("alice", "report")).spec.cmd == "saved before"
    put = await stores.secrets.put_secret("alice", "token", b"\x00ciphertext", T0)
    assert await stores.secrets.list_secrets("alice") == [put]
    assert await stores.secrets.reencrypt_secrets(lambda ciphertext: ciphertext + b"!") == 1


async def test_sqlite_database_before_secrets_upgrades_and_keeps_its_jobs_and_schedules(tmp_path: Path) -> None:
    from cloudpipe_server.store.sqlite import schema

    url = f"sqlite:///{tmp_path / 'old.db'}"
    before = open_stores(url)
    await _previous_version(before)
    await before.close()
    after = open_stores(url)
    try:
        await _secrets_work_and_the_rest_is_kept(after)
    finally:
        await after.close()
    with closing(sqlite3.connect(tmp_path / "old.db")) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.JOB_MIGRATIONS)
        assert conn.execute(f"SELECT version FROM {schema.SECRET_VERSION_TABLE}").fetchall() == [
            (len(schema.SECRET_MIGRATIONS),)
        ]


async def test_postgres_database_before_secrets_upgrades_and_keeps_its_jobs_and_schedules(postgres_url: str) -> None:
    import psycopg
    from psycopg import sql

    from cloudpipe_server.store.postgres import schema

    before = postgres(postgres_url)
    await _previous_version(before)
    await before.close()
    after = postgres(postgres_url)
    try:
        await _secrets_work_and_the_rest_is_kept(after)
    finally:
        await after.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        for table, migrations in (
            (schema.JOB_VERSION_TABLE, schema.JOB_MIGRATIONS),
            (schema.SCHEDULE_VERSION_TABLE, schema.SCHEDULE_MIGRATIONS),
            (schema.SECRET_VERSION_TABLE, schema.SECRET_MIGRATIONS),
        ):
            query = sql.SQL("SELECT MAX(version), COUNT(*) FROM {}").format(sql.Identifier(table))
            cursor = await conn.execute(query)
            assert await cursor.fetchone() == (len(migrations), len(migrations)), table


async def test_mongodb_database_before_secrets_gets_their_index_and_keeps_its_jobs_and_schedules() -> None:
    """mongomock double: MongoDB has no schema version, only the index to create."""
    import mongomock

    client: Any = mongomock.MongoClient()
    await _previous_version(mongomock_stores(client, database="cloudpipe"))
    assert "secrets" not in client.cloudpipe.list_collection_names()
    after = mongomock_stores(client, database="cloudpipe")
    with atomic_writes():
        await _secrets_work_and_the_rest_is_kept(after)
    assert client.cloudpipe.secrets.index_information()["account_name"]["unique"]
    await after.close()


async def test_sqlite_database_at_schema_7_moves_its_values_out_of_the_job_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite_at(path, 7)) as conn, conn:
        conn.execute(
            "INSERT INTO jobs (account, status, spec, stdin, created_at) VALUES ('alice', 'queued', ?, ?, ?)",
            (OLD_SPEC, b"in" * 5000, to_ns(T0)),
        )
        conn.execute(
            "INSERT INTO jobs (account, status, spec, stdout, stderr, result, created_at, finished_at)"
            " VALUES ('alice', 'done', ?, ?, ?, ?, ?, ?)",
            (OLD_SPEC, b"out", b"err", b"res" * 5000, to_ns(T0), to_ns(T0)),
        )
    backend = open_stores(f"sqlite:///{path}").jobs
    await backend.initialize()
    try:
        queued, done = await backend.get(1), await backend.get(2)
        assert queued.spec.stdin == b"in" * 5000
        assert (done.stdout, done.stderr, done.result) == (b"out", b"err", b"res" * 5000)
        assert await backend.read_output(2, Stream.STDOUT, 1) == b"ut"
    finally:
        await backend.close()
    with closing(sqlite3.connect(path)) as conn:
        sizes = conn.execute("SELECT SUM(length(stdin) + length(stdout) + length(stderr) + length(result)) FROM jobs")
        assert sizes.fetchone()[0] == 0  # the rows hold none of it
        kinds = conn.execute("SELECT job_id, kind FROM job_blobs ORDER BY job_id, kind").fetchall()
        assert kinds == [(1, "stdin"), (2, "result"), (2, "stderr"), (2, "stdout")]


async def test_sqlite_keeps_a_running_jobs_stdin_out_of_the_row_its_lease_updates_rewrite(tmp_path: Path) -> None:
    """Each lease extension rewrites the job's row; with the stdin in it, a 50 MB stdin
    made each one write 50 MB (189 ms, 1,382x a job without one: bench.store_blobs)."""
    path = tmp_path / "cp.db"
    backend = open_stores(f"sqlite:///{path}").jobs
    await backend.initialize()
    try:
        [job_id] = await backend.submit("alice", [spec("cat", stdin=b"s" * 100_000)], T0)
        [claimed] = await backend.claim("o1", T0, LEASE, 1)
        assert claimed.spec.stdin == b"s" * 100_000  # the executor gets it
        assert await backend.extend_leases("o1", [job_id], T0 + 2 * LEASE) == {job_id}
        [summary] = await backend.list_jobs("alice", JobQuery(ids=(job_id,), with_output=False))
        assert summary.spec.stdin == b""
        with closing(sqlite3.connect(path)) as conn:
            row = conn.execute("SELECT length(stdin) FROM jobs WHERE id = ?", (job_id,)).fetchone()
            assert row[0] == 0
    finally:
        await backend.close()
