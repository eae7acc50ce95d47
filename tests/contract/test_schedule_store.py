"""The ScheduleStore contract, run against every backend that can run here (the same
`stores` fixture, backends and MongoDB double as the JobStore contract)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from cloudpipe_server.errors import AlreadyExists, NotFound
from cloudpipe_server.models import JobSpec, Resources
from cloudpipe_server.scheduler.models import (
    CatchupPolicy,
    Fire,
    FireOutcome,
    OverlapPolicy,
    Schedule,
    ScheduleSpec,
)
from cloudpipe_server.store import ScheduleStore, Stores
from cloudpipe_server.store.base import FireRecord, OutcomeChange
from tests.contract.backends import mongomock_stores
from tests.contract.common import T0

LEASE = timedelta(seconds=30)
SECOND = timedelta(seconds=1)


@pytest.fixture
def store(stores: Stores) -> ScheduleStore:
    """Here, the schedule store of conftest's `stores` (the job store elsewhere)."""
    return stores.schedules


def schedule(name: str = "nightly", account: str = "alice", due: datetime = T0, **spec: object) -> Schedule:
    definition = ScheduleSpec(name=name, cron="* * * * *", saved_job="report", **spec)  # type: ignore[arg-type]
    return Schedule(f"id-{account}-{name}", account, definition, T0, T0, due, due)


def fire(item: Schedule, at: datetime, outcome: FireOutcome = FireOutcome.PENDING, **kw: object) -> Fire:
    return Fire(item.id, at, item.account, at, at, outcome, **kw)  # type: ignore[arg-type]


# -- saved jobs --------------------------------------------------------------------------


async def test_every_update_of_a_saved_job_is_a_new_readable_version(store: ScheduleStore) -> None:
    first = await store.create_saved_job("alice", "report", JobSpec(cmd="echo 1"), "daily report", T0)
    second = await store.update_saved_job("alice", "report", JobSpec(cmd="echo 2"), "", T0 + SECOND)
    assert (first.version, second.version) == (1, 2)
    latest = await store.get_saved_job("alice", "report")
    assert latest.version == 2 and latest.spec.cmd == "echo 2" and latest.created_at == T0 + SECOND
    old = await store.get_saved_job("alice", "report", 1)
    assert old.spec.cmd == "echo 1" and old.description == "daily report" and old.created_at == T0


async def test_saved_job_names_are_unique_per_account(store: ScheduleStore) -> None:
    await store.create_saved_job("alice", "report", JobSpec(cmd="a"), "", T0)
    with pytest.raises(AlreadyExists, match="report"):
        await store.create_saved_job("alice", "report", JobSpec(cmd="b"), "", T0)
    other = await store.create_saved_job("bob", "report", JobSpec(cmd="c"), "", T0)
    assert other.version == 1
    assert (await store.get_saved_job("alice", "report")).spec.cmd == "a"


async def test_concurrent_creates_of_one_name_leave_exactly_one(store: ScheduleStore) -> None:
    results = await asyncio.gather(
        *(store.create_saved_job("alice", "x", JobSpec(cmd=str(n)), "", T0) for n in range(8)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, BaseException))


async def test_concurrent_updates_get_distinct_versions(store: ScheduleStore) -> None:
    await store.create_saved_job("alice", "x", JobSpec(cmd="0"), "", T0)
    saved = await asyncio.gather(*(store.update_saved_job("alice", "x", JobSpec(cmd=str(n)), "", T0) for n in range(8)))
    assert sorted(s.version for s in saved) == list(range(2, 10))


async def test_missing_saved_jobs_and_versions_are_not_found_by_name(store: ScheduleStore) -> None:
    await store.create_saved_job("alice", "report", JobSpec(cmd="a"), "", T0)
    with pytest.raises(NotFound, match="no version 7"):
        await store.get_saved_job("alice", "report", 7)
    with pytest.raises(NotFound, match="'nope'"):
        await store.get_saved_job("alice", "nope")
    with pytest.raises(NotFound):
        await store.get_saved_job("bob", "report")
    with pytest.raises(NotFound):
        await store.update_saved_job("bob", "report", JobSpec(cmd="b"), "", T0)


async def test_listing_shows_the_latest_version_of_each_by_name(store: ScheduleStore) -> None:
    await store.create_saved_job("alice", "b", JobSpec(cmd="b1"), "", T0)
    await store.create_saved_job("alice", "a", JobSpec(cmd="a1"), "", T0)
    await store.update_saved_job("alice", "b", JobSpec(cmd="b2"), "", T0)
    await store.create_saved_job("bob", "c", JobSpec(cmd="c1"), "", T0)
    listed = await store.list_saved_jobs("alice")
    assert [(s.name, s.version, s.spec.cmd) for s in listed] == [("a", 1, "a1"), ("b", 2, "b2")]


async def test_deleting_a_saved_job_deletes_every_version(store: ScheduleStore) -> None:
    await store.create_saved_job("alice", "x", JobSpec(cmd="1"), "", T0)
    await store.update_saved_job("alice", "x", JobSpec(cmd="2"), "", T0)
    await store.delete_saved_job("alice", "x")
    with pytest.raises(NotFound):
        await store.get_saved_job("alice", "x", 1)
    with pytest.raises(NotFound):
        await store.delete_saved_job("alice", "x")
    assert (await store.create_saved_job("alice", "x", JobSpec(cmd="3"), "", T0)).version == 1


async def test_a_function_saved_job_keeps_its_pickle_and_python(store: ScheduleStore) -> None:
    spec = JobSpec(
        cmd="python3 -m cloudpipe_runner",
        stdin=bytes(range(256)) * 100,
        env={"K": "v.w", "$X": "y"},
        serializer="cloudpickle",
        client_python="3.11",
        resources=Resources(cpus=0.5),
    )
    await store.create_saved_job("alice", "fn", spec, "", T0)
    assert (await store.get_saved_job("alice", "fn")).spec == spec


# -- schedules ---------------------------------------------------------------------------


async def test_a_schedule_round_trips_every_field(store: ScheduleStore) -> None:
    job = JobSpec(cmd="date", stdin=b"\x00\xff", env={"a.b": "1"}, tags={"t": "v"})
    spec = ScheduleSpec(
        name="full",
        cron="*/5 * * * *",
        timezone="Europe/Berlin",
        job=job,
        jitter=timedelta(seconds=7.5),
        start_at=T0,
        end_at=T0 + timedelta(days=30),
        overlap=OverlapPolicy.BUFFER_ONE,
        catchup=CatchupPolicy.RUN_ALL,
        catchup_window=timedelta(minutes=90),
        description="ünïcode",
    )
    stored = await store.create_schedule(Schedule("sid", "alice", spec, T0, T0, T0, T0 + SECOND, paused=True))
    got = await store.get_schedule("alice", "full")
    assert got == stored and got.spec == spec and got.paused and got.next_due_at == T0 + SECOND
    assert (await store.schedules_by_id(["sid", "missing"])) == {"sid": got}


async def test_schedule_names_are_unique_per_account(store: ScheduleStore) -> None:
    await store.create_schedule(schedule("nightly"))
    with pytest.raises(AlreadyExists, match="nightly"):
        await store.create_schedule(replace(schedule("nightly"), id="other-id"))
    await store.create_schedule(schedule("nightly", account="bob"))
    assert [s.name for s in await store.list_schedules("alice")] == ["nightly"]
    with pytest.raises(NotFound):
        await store.get_schedule("carol", "nightly")


async def test_updating_renames_and_moves_the_cursor(store: ScheduleStore) -> None:
    await store.create_schedule(schedule("a"))
    await store.create_schedule(schedule("b"))
    renamed = replace(schedule("c").spec, cron="0 * * * *")
    later = T0 + timedelta(hours=1)
    updated = await store.update_schedule("alice", "a", renamed, (later, later + SECOND), T0 + SECOND)
    assert updated.name == "c" and updated.spec.cron == "0 * * * *" and updated.next_due_at == later + SECOND
    assert updated.updated_at == T0 + SECOND and updated.id == "id-alice-a"
    with pytest.raises(AlreadyExists):
        await store.update_schedule("alice", "c", schedule("b").spec, None, T0)
    with pytest.raises(NotFound):
        await store.update_schedule("alice", "a", renamed, None, T0)
    ended = await store.update_schedule("alice", "c", renamed, None, T0)
    assert ended.next_fire_at is None and ended.next_due_at is None


async def test_schedules_using_a_saved_job(store: ScheduleStore) -> None:
    await store.create_schedule(schedule("x"))
    await store.create_schedule(replace(schedule("y"), spec=replace(schedule("y").spec, saved_job="other")))
    assert await store.schedules_using("alice", "report") == ["x"]
    assert await store.schedules_using("bob", "report") == []


async def test_deleting_a_schedule_deletes_its_fires(store: ScheduleStore) -> None:
    item = await store.create_schedule(schedule())
    assert await store.add_fire(fire(item, T0))
    await store.delete_schedule("alice", "nightly")
    assert await store.fires(item.id) == [] and await store.open_fires() == []
    with pytest.raises(NotFound):
        await store.delete_schedule("alice", "nightly")


# -- claims and fires --------------------------------------------------------------------


async def test_claims_take_due_unpaused_unleased_schedules_earliest_first(store: ScheduleStore) -> None:
    await store.create_schedule(schedule("late", due=T0 + 2 * SECOND))
    await store.create_schedule(schedule("early", due=T0))
    await store.create_schedule(schedule("future", due=T0 + timedelta(hours=1)))
    await store.create_schedule(replace(schedule("paused"), paused=True))
    claimed = await store.claim_due("s1", T0 + 5 * SECOND, LEASE, 10)
    assert [s.name for s in claimed] == ["early", "late"]
    assert all(s.lease_owner == "s1" and s.lease_expires_at == T0 + 5 * SECOND + LEASE for s in claimed)
    assert await store.claim_due("s2", T0 + 6 * SECOND, LEASE, 10) == []
    retaken = await store.claim_due("s2", T0 + 5 * SECOND + LEASE + SECOND, LEASE, 1)
    assert [s.name for s in retaken] == ["early"]
    assert await store.next_due_at() == T0


async def test_concurrent_claims_never_lease_a_schedule_twice(store: ScheduleStore) -> None:
    for n in range(30):
        await store.create_schedule(schedule(f"s{n:02}"))
    batches = await asyncio.gather(*(store.claim_due(f"owner{n}", T0, LEASE, 7) for n in range(8)))
    names = [s.name for batch in batches for s in batch]
    assert sorted(names) == [f"s{n:02}" for n in range(30)]


async def test_recording_fires_moves_the_cursor_and_releases_the_lease(store: ScheduleStore) -> None:
    item = await store.create_schedule(schedule())
    [claimed] = await store.claim_due("s1", T0, LEASE, 10)
    fires = [fire(claimed, T0), fire(claimed, T0 + 60 * SECOND, FireOutcome.SKIPPED, reason="missed")]
    nxt = (T0 + 120 * SECOND, T0 + 121 * SECOND)
    assert await store.record_fires("s1", [FireRecord(item.id, fires, nxt)]) == [fires]
    after = await store.get_schedule("alice", "nightly")
    assert (after.next_fire_at, after.next_due_at, after.lease_owner) == (*nxt, "")
    assert await store.fires(item.id) == list(reversed(fires))
    assert await store.open_fires() == [fires[0]]


async def test_a_fire_is_recorded_once_whoever_records_it(store: ScheduleStore) -> None:
    item = await store.create_schedule(schedule())
    await store.claim_due("s1", T0, LEASE, 1)
    first = fire(item, T0, reason="first")
    assert await store.record_fires("s1", [FireRecord(item.id, [first], (T0, T0))]) == [[first]]
    await store.claim_due("s2", T0, LEASE, 1)
    again = [fire(item, T0, FireOutcome.SKIPPED, reason="second"), fire(item, T0 + SECOND)]
    assert await store.record_fires("s2", [FireRecord(item.id, again, None)]) == [[again[1]]]
    assert [f.reason for f in await store.fires(item.id)] == ["", "first"]
    assert not await store.add_fire(fire(item, T0))


async def test_concurrent_records_of_the_same_fires_insert_each_once(store: ScheduleStore) -> None:
    items = [await store.create_schedule(schedule(f"s{n}")) for n in range(5)]
    times = [T0 + n * SECOND for n in range(10)]

    async def record(owner: str) -> list[list[Fire] | None]:
        await store.claim_due(owner, T0 + LEASE * 10 if owner == "late" else T0, LEASE, 10)
        records = [FireRecord(i.id, [fire(i, t, reason=owner) for t in times], None) for i in items]
        return await store.record_fires(owner, records)

    first = await record("early")
    second = await record("late")  # its claim came after the first lease expired
    inserted = [f for results in (first, second) for fs in results if fs for f in fs]
    assert len(inserted) == 50 and len({(f.schedule_id, f.scheduled_at) for f in inserted}) == 50


async def test_a_lost_lease_records_nothing(store: ScheduleStore) -> None:
    item = await store.create_schedule(schedule())
    await store.claim_due("s1", T0, LEASE, 1)
    await store.update_schedule("alice", "nightly", item.spec, (T0, T0), T0)  # an update breaks the lease
    assert await store.record_fires("s1", [FireRecord(item.id, [fire(item, T0)], None)]) == [None]
    assert await store.fires(item.id) == []
    assert (await store.get_schedule("alice", "nightly")).next_fire_at == T0
    await store.claim_due("s1", T0, LEASE, 1)
    await store.set_paused("alice", "nightly", True, (T0, T0), T0)
    assert await store.record_fires("s1", [FireRecord(item.id, [fire(item, T0)], None)]) == [None]
    assert await store.next_due_at() is None and await store.claim_due("s1", T0, LEASE, 1) == []


async def test_fire_outcomes_change_by_compare_and_set(store: ScheduleStore) -> None:
    item = await store.create_schedule(schedule())
    pending = fire(item, T0)
    await store.add_fire(pending)
    running = OutcomeChange(item.id, T0, FireOutcome.PENDING, FireOutcome.RUNNING, job_id=42)
    assert await store.set_fire_outcomes([running, running]) == [True, False]
    finish = OutcomeChange(item.id, T0, FireOutcome.RUNNING, FireOutcome.FINISHED, job_status="done", reason="ok")
    assert await store.set_fire_outcomes([finish]) == [True]
    [done] = await store.fires(item.id)
    assert (done.outcome, done.job_id, done.job_status, done.reason) == (FireOutcome.FINISHED, 42, "done", "ok")
    missing = OutcomeChange(item.id, T0 + SECOND, FireOutcome.PENDING, FireOutcome.FAILED)
    assert await store.set_fire_outcomes([missing]) == [False]


async def test_open_fires_are_the_unfinished_ones_oldest_first(store: ScheduleStore) -> None:
    a, b = await store.create_schedule(schedule("a")), await store.create_schedule(schedule("b"))
    outcomes = list(FireOutcome)
    for n, outcome in enumerate(outcomes):
        await store.add_fire(fire(a if n % 2 else b, T0 - n * SECOND, outcome, job_id=n or None))
    opened = await store.open_fires()
    assert [f.outcome for f in opened] == sorted((o for o in outcomes if o.open), key=lambda o: -outcomes.index(o))
    assert {f.schedule_id for f in await store.open_fires([a.id])} == {a.id}
    assert await store.open_fires([]) == [] and len(await store.open_fires(limit=1)) == 1


async def test_history_pages_newest_first(store: ScheduleStore) -> None:
    item = await store.create_schedule(schedule())
    for n in range(5):
        await store.add_fire(fire(item, T0 + n * SECOND, FireOutcome.FINISHED, manual=n == 3))
    page = await store.fires(item.id, limit=2)
    assert [f.scheduled_at for f in page] == [T0 + 4 * SECOND, T0 + 3 * SECOND] and page[1].manual
    rest = await store.fires(item.id, limit=10, before=page[-1].scheduled_at)
    assert [f.scheduled_at for f in rest] == [T0 + 2 * SECOND, T0 + SECOND, T0]


# -- MongoDB transactions, as the driver spec has them --------------------------------------


class SpecSession:
    """A session double for mongomock (which has none) that keeps the rule of the MongoDB
    driver spec that matters to recording fires: a write error (duplicate key) aborts the
    server-side transaction, later operations in it fail with NoSuchTransaction (labelled
    TransientTransactionError), and `with_transaction` runs the callback again on a
    transient error. Writes are not rolled back: only the retries are modelled."""

    def __init__(self) -> None:
        self.aborted = False
        self.attempts = 0

    def __enter__(self) -> SpecSession:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def with_transaction(self, callback: Callable[[SpecSession], Any]) -> Any:
        from pymongo.errors import PyMongoError

        while True:
            self.aborted, self.attempts = False, self.attempts + 1
            try:
                return callback(self)
            except PyMongoError as exc:
                if not exc.has_error_label("TransientTransactionError") or self.attempts >= 5:
                    raise


@contextmanager
def spec_sessions(client: Any) -> Iterator[SpecSession]:
    """`client.start_session()` gives one SpecSession; mongomock's collection calls with
    that session follow its rules."""
    from mongomock.collection import Collection
    from pymongo.errors import DuplicateKeyError, OperationFailure

    session = SpecSession()
    names = ("find", "find_one", "insert_one", "insert_many", "update_one")
    originals = {name: getattr(Collection, name) for name in names}

    def in_session(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, session: SpecSession | None = None, **kwargs: Any) -> Any:
            if session is not None and session.aborted:
                labels = {"errorLabels": ["TransientTransactionError"]}
                raise OperationFailure("Transaction has been aborted.", code=251, details=labels)
            try:
                return original(*args, **kwargs)
            except DuplicateKeyError:
                if session is not None:
                    session.aborted = True
                raise

        return call

    client.start_session = lambda: session
    for name, original in originals.items():
        setattr(Collection, name, in_session(original))
    try:
        yield session
    finally:
        for name, original in originals.items():
            setattr(Collection, name, original)


async def test_mongodb_transactions_record_around_fires_already_recorded() -> None:
    import mongomock

    client = mongomock.MongoClient()
    backend = mongomock_stores(client, transactions=True).schedules
    await backend.initialize()
    item = await backend.create_schedule(schedule())
    assert await backend.add_fire(fire(item, T0, reason="recorded before"))
    await backend.claim_due("s1", T0, LEASE, 1)
    with spec_sessions(client) as session:
        again = [fire(item, T0), fire(item, T0 + SECOND)]
        assert await backend.record_fires("s1", [FireRecord(item.id, again, (T0 + 2 * SECOND,) * 2)]) == [[again[1]]]
    assert session.attempts == 1  # a duplicate-key error would have aborted and retried the transaction
    assert [f.reason for f in await backend.fires(item.id)] == ["", "recorded before"]
    assert (await backend.get_schedule("alice", "nightly")).next_fire_at == T0 + 2 * SECOND
    await backend.close()
