"""The JobStore contract, run against every backend that can run here."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.models import JobQuery, JobSpec, JobStatus, Outcome, Resources, ResultType
from cloudpipe_server.store.base import JobStore
from tests.contract.mongomock_double import atomic_writes

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


# With no MongoDB server on this machine, the mongodb backend runs against mongomock: an
# in-memory double of pymongo, used only because no server can run here (see
# mongomock_double.py). Its test ids say so. Set CLOUDPIPE_TEST_MONGO_URI to run the same
# tests against a real server.
MONGO_URI = os.environ.get("CLOUDPIPE_TEST_MONGO_URI", "")
MONGO = pytest.param("mongodb", id="mongodb" if MONGO_URI else "mongodb-mongomock-double")


@pytest.fixture(params=["sqlite", "postgres", MONGO])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    backend: JobStore
    if request.param == "sqlite":
        from cloudpipe_server.store.sqlite import SqliteJobStore

        backend = SqliteJobStore(tmp_path / "jobs.db")
    elif request.param == "postgres":
        from cloudpipe_server.store.postgres import PostgresJobStore

        backend = PostgresJobStore(request.getfixturevalue("postgres_url"))
    elif request.param == "mongodb":
        backend = await _mongo_store(request)
    else:
        raise AssertionError(f"unknown backend {request.param}")
    await backend.initialize()
    yield backend
    await backend.close()


async def _mongo_store(request: pytest.FixtureRequest) -> JobStore:
    """A MongoJobStore on the real server's fresh database when one is given, else on a
    fresh mongomock client."""
    from cloudpipe_server.store.mongodb import MongoJobStore

    if MONGO_URI:
        return MongoJobStore(MONGO_URI, database=request.getfixturevalue("mongo_database"))
    import mongomock

    writes = atomic_writes()
    writes.__enter__()
    request.addfinalizer(lambda: writes.__exit__(None, None, None))
    return MongoJobStore("mongodb://mongomock", client=mongomock.MongoClient(), transactions=False)


def spec(cmd: str = "echo hi", **kw: object) -> JobSpec:
    return JobSpec(cmd=cmd, **kw)  # type: ignore[arg-type]


async def test_submitted_jobs_get_increasing_ids_and_start_queued(store: JobStore) -> None:
    ids = await store.submit("alice", [spec("a"), spec("b")], T0)
    more = await store.submit("alice", [spec("c")], T0)
    assert ids[0] >= 1 and ids[1] == ids[0] + 1 and more[0] > ids[1]
    job = await store.get(ids[0], "alice")
    assert job.status is JobStatus.QUEUED and job.spec.cmd == "a" and job.created_at == T0
    assert job.started_at is None and job.finished_at is None and job.return_code is None


async def test_concurrent_submits_each_get_consecutive_ids(store: JobStore) -> None:
    batches = await asyncio.gather(*(store.submit("alice", [spec(str(n))] * 20, T0) for n in range(8)))
    assert all(ids == list(range(ids[0], ids[0] + 20)) for ids in batches)
    assert len({i for ids in batches for i in ids}) == 160


async def test_spec_round_trips_every_field(store: JobStore) -> None:
    full = JobSpec(
        cmd="python3 -m x",
        name="ünïcode ☃",
        image="img:1",
        stdin=bytes(range(256)) * 4096,
        env={"A": "1", "B": "é"},
        tags={"t": "v"},
        result_source="file:/tmp/r",
        result_type=ResultType.PICKLE,
        max_runtime=timedelta(seconds=12.5),
        restartable=True,
        resources=Resources(cpus=0.5, memory_bytes=64 << 20, pids=10),
        network=True,
        core="c1",
        multicore=2,
        profile=True,
        volumes=("v1",),
        serializer="cloudpickle",
        client_python="3.11",
    )
    [job_id] = await store.submit("alice", [full], T0)
    assert (await store.get(job_id)).spec == full


async def test_other_accounts_jobs_are_not_found(store: JobStore) -> None:
    [job_id] = await store.submit("alice", [spec()], T0)
    with pytest.raises(NotFound):
        await store.get(job_id, "bob")
    with pytest.raises(NotFound):
        await store.request_kill(job_id, "bob", T0)
    assert await store.list_jobs("bob", JobQuery()) == []
    with pytest.raises(NotFound):
        await store.get(10_000)


async def test_list_filters_and_orders(store: JobStore) -> None:
    ids = await store.submit("alice", [spec("1", name="x"), spec("2", name="y"), spec("3", name="x")], T0)
    await store.submit("bob", [spec("4", name="x")], T0)

    async def cmds(**kw: object) -> list[str]:
        return [j.spec.cmd for j in await store.list_jobs("alice", JobQuery(**kw))]  # type: ignore[arg-type]

    assert await cmds() == ["1", "2", "3"]
    assert await cmds(newest_first=True) == ["3", "2", "1"]
    assert await cmds(names=("x",)) == ["1", "3"]
    assert await cmds(ids=(ids[2], ids[0])) == ["1", "3"]
    assert await cmds(after_id=ids[1]) == ["2", "3"]
    assert await cmds(before_id=ids[1]) == ["1"]
    assert await cmds(limit=2) == ["1", "2"]
    assert await cmds(statuses=(JobStatus.DONE,)) == []
    assert await cmds(created_after=T0 + timedelta(seconds=1)) == []


async def test_claim_takes_oldest_first_and_leases(store: JobStore) -> None:
    ids = await store.submit("alice", [spec("1"), spec("2"), spec("3")], T0)
    claimed = await store.claim("d1", T0, LEASE, 2)
    assert [j.id for j in claimed] == ids[:2]
    assert all(j.status is JobStatus.PROCESSING and j.lease_owner == "d1" and j.attempts == 1 for j in claimed)
    assert claimed[0].lease_expires_at == T0 + LEASE and claimed[0].started_at == T0
    assert [j.id for j in await store.claim("d2", T0, LEASE, 5)] == ids[2:]
    assert await store.claim("d3", T0, LEASE, 5) == []


async def test_finish_records_outcome_only_for_the_lease_holder(store: JobStore) -> None:
    [job_id] = await store.submit("alice", [spec()], T0)
    await store.claim("d1", T0, LEASE, 1)
    await store.mark_started(job_id, "d1", "c0ffee", T0 + timedelta(seconds=1))
    outcome = Outcome(JobStatus.DONE, T0 + timedelta(seconds=3), return_code=0, stdout=b"hi\n", result=b"hi\n")
    assert not await store.finish(job_id, "intruder", outcome)
    assert await store.finish(job_id, "d1", outcome)
    job = await store.get(job_id)
    assert job.status is JobStatus.DONE and job.result == b"hi\n" and job.return_code == 0
    assert job.container_id == "c0ffee" and job.runtime == timedelta(seconds=2)
    assert job.queue_delay == timedelta(0) and job.overhead_delay == timedelta(seconds=1)
    assert not await store.finish(job_id, "d1", outcome), "a finished job cannot be finished again"


async def test_kill_queued_job_ends_it_and_running_job_gets_a_flag(store: JobStore) -> None:
    queued, running = await store.submit("alice", [spec(), spec()], T0)
    await store.claim("d1", T0, LEASE, 1)  # claims `queued` (the older one)
    queued, running = running, queued
    killed = await store.request_kill(queued, "alice", T0)
    assert killed.status is JobStatus.KILLED and killed.finished_at == T0
    flagged = await store.request_kill(running, "alice", T0)
    assert flagged.status is JobStatus.PROCESSING and flagged.kill_requested
    assert await store.kill_requested([running, queued]) == {running}
    await store.finish(running, "d1", Outcome(JobStatus.ERROR, T0, return_code=137))
    assert (await store.get(running)).status is JobStatus.KILLED, "a requested kill turns ERROR into KILLED"
    again = await store.request_kill(running, "alice", T0)
    assert again.status is JobStatus.KILLED


async def test_kill_all_and_counts(store: JobStore) -> None:
    await store.submit("alice", [spec(), spec(), spec()], T0)
    [other] = await store.submit("bob", [spec()], T0)
    [done] = await store.claim("d1", T0, LEASE, 1)
    await store.finish(done.id, "d1", Outcome(JobStatus.DONE, T0))
    killed = await store.kill_all("alice", T0)
    assert len(killed) == 2 and done.id not in killed
    counts = await store.counts("alice")
    assert counts[JobStatus.KILLED] == 2 and counts[JobStatus.DONE] == 1 and counts[JobStatus.QUEUED] == 0
    assert set(counts) == set(JobStatus)
    assert (await store.get(other)).status is JobStatus.QUEUED


async def test_expired_lease_requeues_restartable_and_stalls_others(store: JobStore) -> None:
    plain, restartable = await store.submit("alice", [spec(), spec(restartable=True)], T0)
    await store.claim("dead", T0, LEASE, 2)
    assert await store.reap_expired(T0 + LEASE / 2, max_attempts=3) == []
    reaped = {j.id: j for j in await store.reap_expired(T0 + LEASE * 2, max_attempts=3)}
    assert reaped[plain].status is JobStatus.STALLED and reaped[plain].reason
    assert reaped[restartable].status is JobStatus.QUEUED
    [again] = await store.claim("d2", T0 + LEASE * 2, LEASE, 5)
    assert again.id == restartable and again.attempts == 2


async def test_extend_leases_keeps_a_job_from_the_reaper(store: JobStore) -> None:
    [job_id] = await store.submit("alice", [spec()], T0)
    await store.claim("d1", T0, LEASE, 1)
    assert await store.extend_leases("d1", [job_id], T0 + LEASE * 3) == {job_id}
    assert await store.extend_leases("d2", [job_id], T0 + LEASE * 3) == set()
    assert await store.reap_expired(T0 + LEASE * 2, max_attempts=3) == []


async def test_dependencies_wait_then_queue_or_fail(store: JobStore) -> None:
    [first] = await store.submit("alice", [spec("first")], T0)
    [second] = await store.submit("alice", [spec("second", depends_on=(first,))], T0)
    assert (await store.get(second)).status is JobStatus.WAITING
    await store.claim("d1", T0, LEASE, 5)
    await store.finish(first, "d1", Outcome(JobStatus.DONE, T0))
    assert (await store.get(second)).status is JobStatus.QUEUED
    [third] = await store.submit("alice", [spec("third", depends_on=(second,))], T0)
    await store.claim("d1", T0, LEASE, 5)
    await store.finish(second, "d1", Outcome(JobStatus.ERROR, T0, return_code=1))
    failed = await store.get(third)
    assert failed.status is JobStatus.ERROR and f"dependency job {second}" in failed.reason
    with pytest.raises(InvalidArgument):
        await store.submit("bob", [spec(depends_on=(first,))], T0)


def _open_shared(kind: str, target: str) -> JobStore:
    """A store object of its own on the shared database `target`."""
    if kind == "sqlite":
        from cloudpipe_server.store.sqlite import SqliteJobStore

        return SqliteJobStore(target)
    if kind == "postgres":
        from cloudpipe_server.store.postgres import PostgresJobStore

        return PostgresJobStore(target)
    if kind == "mongodb":
        from cloudpipe_server.store.mongodb import MongoJobStore

        return MongoJobStore(MONGO_URI, database=target)
    raise AssertionError(f"unknown backend {kind}")


async def _claim_until_empty(backend: JobStore, owner: str) -> list[int]:
    got: list[int] = []
    while batch := await backend.claim(owner, T0, LEASE, 3):
        got += [j.id for j in batch]
    return got


def _claim_in_process(kind: str, target: str, owner: str, out: multiprocessing.Queue[list[int]]) -> None:
    async def claim_all() -> list[int]:
        backend = _open_shared(kind, target)
        await backend.initialize()
        try:
            return await _claim_until_empty(backend, owner)
        finally:
            await backend.close()

    out.put(asyncio.run(claim_all()))


# The mongodb backend joins only with a real server: mongomock lives inside one process.
PROCESS_BACKENDS = ["sqlite", "postgres", *(["mongodb"] if MONGO_URI else [])]


@pytest.mark.parametrize("kind", PROCESS_BACKENDS)
async def test_concurrent_claims_from_processes_never_double_claim(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fixture = {"postgres": "postgres_url", "mongodb": "mongo_database"}.get(kind)
    target: str = request.getfixturevalue(fixture) if fixture else str(tmp_path / "shared.db")
    backend = _open_shared(kind, target)
    await backend.initialize()
    ids = await backend.submit("alice", [spec(str(i)) for i in range(300)], T0)
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    workers = [context.Process(target=_claim_in_process, args=(kind, target, f"d{i}", queue)) for i in range(4)]
    for worker in workers:
        worker.start()
    claimed = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    everything = [job_id for batch in claimed for job_id in batch]
    assert sorted(everything) == ids, "every job claimed exactly once"
    await backend.close()


async def test_concurrent_claims_from_tasks_never_double_claim_mongomock_double() -> None:
    """The multi-process test cannot run on mongomock (an in-process double, used only
    because no MongoDB server runs here): instead several store objects on one mongomock
    client claim from concurrent tasks, each store call running in its own thread."""
    import mongomock

    from cloudpipe_server.store.mongodb import MongoJobStore

    client: Any = mongomock.MongoClient()
    stores = [MongoJobStore("mongodb://mongomock", client=client, transactions=False) for _ in range(8)]
    for backend in stores:
        await backend.initialize()
    ids = await stores[0].submit("alice", [spec(str(i)) for i in range(300)], T0)
    with atomic_writes():
        claimed = await asyncio.gather(*(_claim_until_empty(backend, f"d{i}") for i, backend in enumerate(stores)))
    everything = [job_id for batch in claimed for job_id in batch]
    assert sorted(everything) == ids, "every job claimed exactly once"
    for backend in stores:
        await backend.close()


async def test_dependents_of_jobs_finishing_together_are_queued(store: JobStore) -> None:
    """Two dependencies finishing at the same moment must not each miss the other."""
    for round_ in range(10):
        first, second = await store.submit("alice", [spec("a"), spec("b")], T0)
        [dependent] = await store.submit("alice", [spec("c", depends_on=(first, second))], T0)
        await store.claim("d1", T0, LEASE, 2)
        done = Outcome(JobStatus.DONE, T0)
        assert all(await asyncio.gather(store.finish(first, "d1", done), store.finish(second, "d1", done)))
        assert (await store.get(dependent)).status is JobStatus.QUEUED, f"round {round_}"
        await store.claim("d1", T0, LEASE, 1)
        await store.finish(dependent, "d1", done)


async def test_submit_with_an_unknown_dependency_stores_nothing(store: JobStore) -> None:
    [first] = await store.submit("alice", [spec("first")], T0)
    with pytest.raises(InvalidArgument):
        await store.submit("alice", [spec("ok"), spec("bad", depends_on=(first, 10_000))], T0)
    assert [j.id for j in await store.list_jobs("alice", JobQuery())] == [first]


async def test_killing_a_dependency_fails_its_waiting_chain(store: JobStore) -> None:
    [first] = await store.submit("alice", [spec("first")], T0)
    [second] = await store.submit("alice", [spec("second", depends_on=(first,))], T0)
    [third] = await store.submit("alice", [spec("third", depends_on=(second,))], T0)
    await store.request_kill(first, "alice", T0)
    assert (await store.get(second)).reason == f"dependency job {first} ended killed"
    assert (await store.get(third)).reason == f"dependency job {second} ended error"
    assert (await store.counts("alice"))[JobStatus.ERROR] == 2
