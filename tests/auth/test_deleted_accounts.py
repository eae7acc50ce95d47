"""A deleted account's name is never registered again (its jobs, saved jobs and schedules
are keyed by that name), its schedules stop firing, and sign-up is closed unless an
installation opens it. Real auth service and server processes over mutual TLS; the
server runs the fake executor (no container is needed to prove who may read a job)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudpipe_auth.config import AuthServiceSettings
from cloudpipe_auth.core import Policy
from cloudpipe_auth.sqlite import MIGRATIONS, SqliteAccountStore
from cloudpipe_auth.store import AccountState, RetiredName
from cloudpipe_sdk import AuthError, Client, NotFound
from cloudpipe_server.errors import NotFound as StoreNotFound
from cloudpipe_server.models import JobQuery
from cloudpipe_server.scheduler.models import FireOutcome
from cloudpipe_server.store import open_stores
from tests.auth.conftest import ADMIN_TOKEN
from tests.auth.support import AuthProcess, new_account, start_auth_service
from tests.support import ServerProcess, start_server

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_a_deleted_name_is_kept_and_refused_at_sign_up(tmp_path: Path) -> None:
    store = SqliteAccountStore(tmp_path / "auth.db")
    await store.initialize()
    await store.create_account("alice", "hash", NOW)
    assert await store.account_state("alice") is AccountState.ACTIVE
    await store.update_account("alice", NOW, disabled=True)
    assert await store.account_state("alice") is AccountState.DISABLED
    await store.delete_account("alice", NOW)
    assert await store.get_account("alice") is None
    assert await store.account_state("alice") is AccountState.DELETED
    assert await store.account_state("bob") is None
    with pytest.raises(RetiredName, match="deleted account"):
        await store.create_account("alice", "new hash", NOW)
    with pytest.raises(StoreNotFound):
        await store.delete_account("alice", NOW)  # deleted once; the tombstone stays
    await store.close()


async def test_a_version_1_account_store_upgrades_and_keeps_its_accounts(tmp_path: Path) -> None:
    path = tmp_path / "auth.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO accounts (name, password_hash, created_at, updated_at) VALUES ('old', 'h', 1, 1)")
        conn.execute("PRAGMA user_version = 1")
    store = SqliteAccountStore(path)
    await store.initialize()
    assert await store.account_state("old") is AccountState.ACTIVE
    await store.delete_account("old", NOW)
    with pytest.raises(RetiredName):
        await store.create_account("old", "h", NOW)
    await store.close()


def test_sign_up_is_closed_by_default() -> None:
    assert AuthServiceSettings.from_env({}).open_signup is False
    assert Policy().open_signup is False
    assert AuthServiceSettings.from_env({"CLOUDPIPE_AUTH_OPEN_SIGNUP": "true"}).open_signup is True


def test_with_sign_up_closed_only_the_admin_creates_accounts(pki_dir: Path, tmp_path: Path) -> None:
    closed = start_auth_service(
        pki_dir, tmp_path, {"CLOUDPIPE_AUTH_OPEN_SIGNUP": "", "CLOUDPIPE_AUTH_ADMIN_TOKEN": ADMIN_TOKEN}
    )
    try:
        with closed.external_client() as client:
            form = {"accountName": "walk-in", "password": "long enough"}
            assert client.post("/v1/accounts", data=form).status_code == 403
            assert client.post("/v2/accounts", json=form).status_code == 403
            created = client.post("/v2/admin/accounts", json=form, headers=ADMIN)
            assert created.status_code == 201, created.text
    finally:
        assert closed.stop() == 0, closed.log


def account_state(service: AuthProcess, name: str) -> tuple[int, object]:
    with service.internal_client() as client:
        answer = client.get("/v1/account", params={"accountName": name})
    return answer.status_code, answer.json() if answer.status_code == 200 else None


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_deleted_account_cannot_be_registered_again_its_jobs_stay_unreadable_and_its_schedule_stops(
    auth_service: AuthProcess, auth_server: ServerProcess
) -> None:
    name, _, key = new_account(auth_service, "leaving")
    with Client(auth_server.address, api_key=key, account=name) as client:
        job = client.shell("echo old-owner-secret")
        assert job.result(timeout=30) == b"old-owner-secret\n"
        client.saved_jobs.save_shell("tick", "echo tick")
        client.schedules.create("tick", "* * * * * *", saved_job="tick", overlap="allow")
        wait_for(lambda: any(f.job_id is not None for f in client.schedules.history("tick")), 20, "a first fire")
    assert account_state(auth_service, name) == (200, {"accountName": name, "state": "active"})

    with auth_service.external_client() as web:
        assert web.delete(f"/v2/admin/accounts/{name}", headers=ADMIN).status_code == 204
        deleted_at = datetime.now(UTC)
        again = web.post("/v1/accounts", data={"accountName": name, "password": "a new password"})
        assert again.status_code == 409 and "deleted account" in again.text, again.text
        again_v2 = web.post("/v2/accounts", json={"accountName": name, "password": "a new password"})
        assert again_v2.status_code == 409 and "deleted account" in again_v2.json()["message"]
        by_admin = web.post("/v2/admin/accounts", json={"accountName": name, "password": "long enough"}, headers=ADMIN)
        assert by_admin.status_code == 409
    assert account_state(auth_service, name) == (200, {"accountName": name, "state": "deleted"})
    assert account_state(auth_service, "never-registered")[0] == 404

    with Client(auth_server.address, api_key=key, account=name, retry_for=0) as old, pytest.raises(AuthError):
        old.get(job.id)
    newcomer, _, new_key = new_account(auth_service, "newcomer")
    with Client(auth_server.address, api_key=new_key, account=newcomer) as other:
        with pytest.raises(NotFound):
            other.get(job.id)
        assert other.list() == []

    time.sleep(3)  # three cron seconds: none may make a job for the deleted account
    stores = open_stores(f"sqlite:///{auth_server.data_dir / 'cloudpipe.db'}")

    async def inspect() -> tuple[bool, list[datetime], list[str]]:
        await stores.initialize()
        try:
            schedule = await stores.schedules.get_schedule(name, "tick")
            jobs = await stores.jobs.list_jobs(name, JobQuery(limit=1000))
            fires = await stores.schedules.fires(schedule.id, limit=1000)
        finally:
            await stores.close()
        failed = [f.reason or "" for f in fires if f.outcome is FireOutcome.FAILED]
        return schedule.paused, [j.created_at for j in jobs], failed

    paused, created, failed = asyncio.run(inspect())
    late = [c for c in created if c > deleted_at + timedelta(seconds=1)]
    assert late == [], f"{len(late)} job(s) made for the deleted account after its deletion"
    assert paused, "the deleted account's schedule was not paused"
    assert all("was deleted" in reason for reason in failed)


@pytest.mark.docker
def test_deleting_an_account_kills_its_running_and_queued_jobs_and_pauses_its_schedules(
    auth_service: AuthProcess, tmp_path: Path, docker_engine: object
) -> None:
    env = auth_service.server_env(
        CLOUDPIPE_AUTH_CACHE_TTL="0",
        CLOUDPIPE_MAX_CONCURRENT_JOBS="1",  # the second job waits in the queue
        CLOUDPIPE_DELETED_ACCOUNT_SWEEP_INTERVAL="0.5",
        CLOUDPIPE_WARM_POOL="false",
    )
    server = start_server(tmp_path, env=env)
    try:
        name, _, key = new_account(auth_service, "quitting")
        stayer, _, stayer_key = new_account(auth_service, "staying")
        with Client(server.address, api_key=key, account=name) as client:
            running = client.shell("echo started; sleep 120")
            queued = client.shell("echo never")
            wait_for(lambda: client.get(running.id).snapshot.stdout == b"started\n", 60, "the first job running")
            assert client.get(queued.id).status.value == "queued"
            client.saved_jobs.save_shell("yearly", "echo new year")
            client.schedules.create("yearly", "0 0 1 1 *", saved_job="yearly")
        with Client(server.address, api_key=stayer_key, account=stayer) as other:
            kept = other.shell("sleep 3; echo kept")

        with auth_service.external_client() as web:
            assert web.delete(f"/v2/admin/accounts/{name}", headers=ADMIN).status_code == 204
        deleted_at = time.monotonic()
        stores = open_stores(f"sqlite:///{tmp_path / 'cloudpipe.db'}")

        async def states() -> tuple[dict[int, str], bool]:
            await stores.initialize()
            try:
                jobs = {j.id: j.status.value for j in await stores.jobs.list_jobs(name, JobQuery(limit=10))}
                return jobs, (await stores.schedules.get_schedule(name, "yearly")).paused
            finally:
                await stores.close()

        wait_for(
            lambda: asyncio.run(states()) == ({running.id: "killed", queued.id: "killed"}, True),
            30,
            "the deleted account's jobs killed and its schedule paused",
        )
        assert time.monotonic() - deleted_at < 20, "killed at the next sweeps, not at the job's end"
        with Client(server.address, api_key=stayer_key, account=stayer) as other:
            assert other.get(kept.id).result(timeout=60) == b"kept\n", "another account's job runs on"
        assert "account quitting" in server.log and "was deleted" in server.log
    finally:
        assert server.stop() == 0
