"""The JobStore contract, upgrades: databases written by earlier schema versions."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

from cloudpipe_server.models import JobQuery, JobStatus, Outcome
from cloudpipe_server.store import JobStore, open_stores, to_ns
from tests.contract.backends import mongomock_stores, postgres
from tests.contract.common import LEASE, T0, out, spec
from tests.contract.mongomock_double import atomic_writes

OLD_SPEC = json.dumps({"cmd": "echo old", "name": "old", "restartable": True})  # as schema 1 stored it


async def test_sqlite_database_at_schema_1_upgrades_and_keeps_its_jobs(tmp_path: Path) -> None:
    from cloudpipe_server.store.sqlite.schema import JOB_MIGRATIONS as MIGRATIONS

    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
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
    from cloudpipe_server.store.sqlite.schema import JOB_MIGRATIONS as MIGRATIONS

    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        for script in MIGRATIONS[:2]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 2")
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
