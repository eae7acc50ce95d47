"""`ScheduleStore.apply_changes`, the store half of `cloudpipe apply`, on every backend:
a whole change set is stored, a failing precondition leaves nothing written, and of two
concurrent applies of the same names one wins whole.

MongoDB applies only in a transaction. Without a real server here, the mongodb case
runs the transactional path on the mongomock double with its sessions modelled
(`spec_sessions`); the double has no rollback, so what it proves is that every
precondition is checked before the first write. Concurrent applies need a server's
transactions (CLOUDPIPE_TEST_MONGO_URI) and are not run on the double."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from cloudpipe_server.errors import FailedPrecondition
from cloudpipe_server.models import JobSpec
from cloudpipe_server.scheduler.models import SavedJobWrite, Schedule, ScheduleSpec, ScheduleWrite
from cloudpipe_server.store import ScheduleStore, Stores
from tests.contract.backends import mongomock_stores, postgres
from tests.contract.common import T0
from tests.contract.test_schedule_store import spec_sessions

SECOND = timedelta(seconds=1)
DOUBLE = "mongodb-mongomock-double"


@pytest.fixture
async def store(stores: Stores, request: pytest.FixtureRequest) -> AsyncIterator[ScheduleStore]:
    """The backend's schedule store; for the mongomock double, one whose database has
    (modelled) transactions, as a replica set has."""
    if request.node.callspec.id.startswith(DOUBLE):
        import mongomock

        client: Any = mongomock.MongoClient()
        double = mongomock_stores(client, transactions=True)
        with spec_sessions(client):
            await double.initialize()
            yield double.schedules
            await double.close()
        return
    yield stores.schedules


def new_schedule(name: str, saved_job: str = "report", account: str = "alice") -> ScheduleWrite:
    spec = ScheduleSpec(name=name, cron="* * * * *", saved_job=saved_job)
    return ScheduleWrite(Schedule(f"id-{account}-{name}", account, spec, T0, T0, T0, T0))


def changed_schedule(current: Schedule, cron: str = "0 * * * *") -> ScheduleWrite:
    spec = replace(current.spec, cron=cron)
    return ScheduleWrite(
        replace(current, spec=spec, next_fire_at=T0 + SECOND, next_due_at=T0 + SECOND), current.updated_at
    )


async def everything(store: ScheduleStore) -> tuple[list[tuple[str, int, str]], list[tuple[str, str, str]]]:
    """Every saved job (name, latest version, cmd) and schedule (name, cron, id) of alice."""
    jobs = [(s.name, s.version, s.spec.cmd) for s in await store.list_saved_jobs("alice")]
    schedules = [(s.name, s.spec.cron, s.id) for s in await store.list_schedules("alice")]
    return jobs, schedules


async def test_a_whole_change_set_is_stored(store: ScheduleStore) -> None:
    await store.create_saved_job("alice", "old", JobSpec(cmd="echo 1"), "", T0)
    existing = await store.create_schedule(new_schedule("hourly").schedule)
    saved, schedules = await store.apply_changes(
        "alice",
        [SavedJobWrite("report", JobSpec(cmd="echo r"), "nightly"), SavedJobWrite("old", JobSpec(cmd="echo 2"), "", 1)],
        [new_schedule("nightly"), changed_schedule(existing)],
        T0 + SECOND,
    )
    assert [(s.name, s.version, s.description) for s in saved] == [("report", 1, "nightly"), ("old", 2, "")]
    assert [(s.name, s.spec.cron) for s in schedules] == [("nightly", "* * * * *"), ("hourly", "0 * * * *")]
    assert schedules[1].id == existing.id and schedules[1].updated_at == T0 + SECOND
    assert schedules[1].next_fire_at == T0 + SECOND and schedules[1].created_at == T0
    assert (await store.get_saved_job("alice", "old", 1)).spec.cmd == "echo 1"
    assert await everything(store) == (
        [("old", 2, "echo 2"), ("report", 1, "echo r")],
        [("hourly", "0 * * * *", existing.id), ("nightly", "* * * * *", "id-alice-nightly")],
    )


# what another client did between this client's read and its apply -> the entry named
CONFLICTS = {
    "saved job created meanwhile": "saved_jobs.fresh",
    "saved job updated meanwhile": "saved_jobs.kept",
    "saved job deleted meanwhile": "saved_jobs.kept",
    "schedule created meanwhile": "schedules.nightly",
    "schedule updated meanwhile": "schedules.hourly",
    "schedule deleted meanwhile": "schedules.hourly",
}


@pytest.mark.parametrize("conflict", CONFLICTS)
async def test_one_failing_precondition_leaves_nothing_written(store: ScheduleStore, conflict: str) -> None:
    await store.create_saved_job("alice", "kept", JobSpec(cmd="echo 1"), "", T0)
    hourly = await store.create_schedule(new_schedule("hourly").schedule)
    changes = (
        [SavedJobWrite("fresh", JobSpec(cmd="echo f")), SavedJobWrite("kept", JobSpec(cmd="echo 2"), "", 1)],
        [new_schedule("nightly"), changed_schedule(hourly)],
    )
    # what another client does between this client's read and its apply
    if conflict == "saved job created meanwhile":
        await store.create_saved_job("alice", "fresh", JobSpec(cmd="theirs"), "", T0)
    elif conflict == "saved job updated meanwhile":
        await store.update_saved_job("alice", "kept", JobSpec(cmd="theirs"), "", T0)
    elif conflict == "saved job deleted meanwhile":
        await store.delete_saved_job("alice", "kept")
    elif conflict == "schedule created meanwhile":
        await store.create_schedule(replace(new_schedule("nightly").schedule, id="theirs"))
    elif conflict == "schedule updated meanwhile":
        await store.update_schedule("alice", "hourly", replace(hourly.spec, cron="5 * * * *"), None, T0 + 2 * SECOND)
    else:
        await store.delete_schedule("alice", "hourly")
    before = await everything(store)
    with pytest.raises(FailedPrecondition, match=rf"^{CONFLICTS[conflict]}: changed since it was read"):
        await store.apply_changes("alice", *changes, T0 + SECOND)
    assert await everything(store) == before  # every entry as it was: nothing of the apply written


async def test_a_saved_job_of_another_account_is_not_a_conflict(store: ScheduleStore) -> None:
    await store.create_saved_job("bob", "report", JobSpec(cmd="bob's"), "", T0)
    [saved], [] = await store.apply_changes("alice", [SavedJobWrite("report", JobSpec(cmd="a"))], [], T0)
    assert saved.version == 1 and (await store.get_saved_job("bob", "report")).spec.cmd == "bob's"
    assert (await store.get_saved_job("alice", "report")).spec.cmd == "a"


async def test_concurrent_applies_of_the_same_names_one_wins_whole(
    store: ScheduleStore, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.id.startswith(DOUBLE):
        pytest.skip("needs a MongoDB server's transactions (CLOUDPIPE_TEST_MONGO_URI): the double has no rollback")

    def change_set(n: int) -> tuple[list[SavedJobWrite], list[ScheduleWrite]]:
        jobs = [SavedJobWrite(name, JobSpec(cmd=f"apply {n}")) for name in ("a", "b", "c")]
        schedules = [ScheduleWrite(replace(new_schedule(name, "a").schedule, id=f"{name}{n}")) for name in ("x", "y")]
        return jobs, schedules

    results = await asyncio.gather(
        *(store.apply_changes("alice", *change_set(n), T0) for n in range(6)), return_exceptions=True
    )
    won = [n for n, r in enumerate(results) if not isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, (FailedPrecondition, tuple)) for r in results), results
    [n] = won
    assert await everything(store) == (
        [(name, 1, f"apply {n}") for name in ("a", "b", "c")],
        [("x", "* * * * *", f"x{n}"), ("y", "* * * * *", f"y{n}")],
    )


async def test_mongodb_without_transactions_refuses_an_apply_and_writes_nothing() -> None:
    """A standalone MongoDB server cannot apply a file all or nothing: refused, clearly."""
    stores = mongomock_stores()  # transactions=False: what a standalone server says
    await stores.initialize()
    with pytest.raises(FailedPrecondition, match=r"no transactions.*replica set"):
        await stores.schedules.apply_changes("alice", [SavedJobWrite("report", JobSpec(cmd="a"))], [], T0)
    assert await stores.schedules.list_saved_jobs("alice") == []
    await stores.close()


async def test_postgres_a_delete_waits_for_an_apply_that_checked_the_saved_job(postgres_url: str) -> None:
    """An apply that has checked a saved job's version holds its lock until it commits;
    a delete of that job waits for it, then deletes what it wrote too. (The delete took
    no lock: it removed the old version at once and the apply's next version brought
    the job back, an outcome of neither order.)"""
    import psycopg
    from psycopg.rows import dict_row

    from cloudpipe_server.store.postgres.schedules import _apply

    stores = postgres(postgres_url)
    await stores.initialize()
    try:
        await stores.schedules.create_saved_job("alice", "report", JobSpec(cmd="v1"), "", T0)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True, row_factory=dict_row) as conn:
            async with conn.transaction():  # the apply, between its checks and its commit
                await _apply(conn, "alice", [SavedJobWrite("report", JobSpec(cmd="v2"), "", 1)], [], T0 + SECOND)
                deleting = asyncio.ensure_future(stores.schedules.delete_saved_job("alice", "report"))
                await asyncio.sleep(1)
                assert not deleting.done(), "the delete did not wait for the apply"
            await deleting
        assert await stores.schedules.list_saved_jobs("alice") == []
    finally:
        await stores.close()
