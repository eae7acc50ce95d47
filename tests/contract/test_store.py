"""The JobStore contract, run against every backend that can run here."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.models import JobQuery, JobSpec, JobStatus, Outcome, OutputChunk, Resources, ResultType, Stream
from cloudpipe_server.store.base import JobStore
from cloudpipe_server.store.codec import to_ns
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


async def test_claim_skips_accounts_at_their_running_limit(store: JobStore) -> None:
    a1, a2, a3 = await store.submit("alice", [spec("a1"), spec("a2"), spec("a3")], T0)
    [b1] = await store.submit("bob", [spec("b1")], T0)
    claimed = await store.claim("d1", T0, LEASE, 10, per_account_limit=2)
    assert [j.id for j in claimed] == [a1, a2, b1]
    assert await store.claim("d2", T0, LEASE, 10, per_account_limit=2) == []
    assert await store.finish(a1, "d1", Outcome(JobStatus.DONE, T0, return_code=0))
    assert [j.id for j in await store.claim("d2", T0, LEASE, 10, per_account_limit=2)] == [a3]
    [c1, c2] = await store.submit("carol", [spec("c1"), spec("c2")], T0)
    assert [j.id for j in await store.claim("d3", T0, LEASE, 1, per_account_limit=1)] == [c1]
    assert [j.id for j in await store.claim("d3", T0, LEASE, 10)] == [c2]  # no limit: as before


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
    [again] = await store.claim("d2", T0 + LEASE * 2 + timedelta(seconds=1), LEASE, 5)  # after its backoff
    assert again.id == restartable and again.attempts == 2


async def test_reaper_reasons_say_why_a_job_was_not_requeued(store: JobStore) -> None:
    plain, used_up, killed, again = await store.submit(
        "alice",
        [
            spec("plain"),
            spec("used up", restartable=True),
            spec("killed", restartable=True),
            spec("again", restartable=True),
        ],
        T0,
    )
    await store.claim("dead", T0, LEASE, 4)
    await store.request_kill(killed, "alice", T0)
    reaped = {j.id: j for j in await store.reap_expired(T0 + LEASE * 2, max_attempts=1)}
    assert reaped[plain].status is JobStatus.STALLED and "not restartable" in reaped[plain].reason
    assert reaped[used_up].status is JobStatus.STALLED and "not restartable" not in reaped[used_up].reason
    assert "used all 1 attempts" in reaped[used_up].reason and "lost" in reaped[used_up].reason
    assert reaped[killed].status is JobStatus.KILLED and "kill was requested" in reaped[killed].reason
    assert reaped[again].status is JobStatus.STALLED
    assert all(job.finished_at == T0 + LEASE * 2 for job in reaped.values())


async def test_extend_leases_keeps_a_job_from_the_reaper(store: JobStore) -> None:
    [job_id] = await store.submit("alice", [spec()], T0)
    await store.claim("d1", T0, LEASE, 1)
    assert await store.extend_leases("d1", [job_id], T0 + LEASE * 3) == {job_id}
    assert await store.extend_leases("d2", [job_id], T0 + LEASE * 3) == set()
    assert await store.reap_expired(T0 + LEASE * 2, max_attempts=3) == []


async def test_a_stale_attempt_of_the_same_owner_changes_nothing(store: JobStore) -> None:
    """Run 1 is reaped and requeued, then the same server claims the job again (run 2)
    while run 1 still goes on: run 1's lease operations must not touch run 2."""
    job_id = await _running(store, restartable=True)
    assert await store.append_output(job_id, "d1", [out(0, b"run 1 ")], attempt=1)
    await store.reap_expired(T0 + LEASE * 2, max_attempts=3)
    later = T0 + LEASE * 3
    [again] = await store.claim("d1", later, LEASE, 1)
    assert again.id == job_id and again.attempts == 2
    assert await store.append_output(job_id, "d1", [out(0, b"run 2 ")], attempt=2)
    assert not await store.append_output(job_id, "d1", [out(6, b"more of run 1")], attempt=1)
    assert await store.extend_leases("d1", [job_id], later + LEASE * 9, attempts={job_id: 1}) == set()
    await store.mark_started(job_id, "d1", "run-1-container", later, attempt=1)
    assert not await store.finish(job_id, "d1", Outcome(JobStatus.DONE, later, stdout=b"run 1"), attempt=1)
    job = await store.get(job_id)
    assert job.status is JobStatus.PROCESSING and job.attempts == 2 and job.stdout == b"run 2 "
    assert job.lease_expires_at == later + LEASE and job.container_id == ""
    assert await store.extend_leases("d1", [job_id], later + LEASE * 2, attempts={job_id: 2}) == {job_id}
    assert await store.extend_leases("d1", [job_id], later + LEASE * 2, attempts={}) == {job_id}, "unlisted: owner only"
    await store.mark_started(job_id, "d1", "run-2-container", later, attempt=2)
    assert await store.finish(job_id, "d1", Outcome(JobStatus.DONE, later, stdout=b"run 2"), attempt=2)
    job = await store.get(job_id)
    assert job.status is JobStatus.DONE and job.stdout == b"run 2" and job.container_id == "run-2-container"


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


async def test_settling_among_many_unrelated_waiting_jobs(store: JobStore) -> None:
    """Writes settle only the dependents of the jobs they change: everything else waits
    on, and chains still settle fully."""
    blocker, first, done_before = await store.submit("alice", [spec("blocker"), spec("first"), spec("done")], T0)
    await store.claim("d1", T0, LEASE, 3)
    assert await store.finish(done_before, "d1", Outcome(JobStatus.DONE, T0))
    unrelated = await store.submit("alice", [spec(f"u{n}", depends_on=(blocker,)) for n in range(300)], T0)
    second, third = await store.submit(
        "alice", [spec("second", depends_on=(first, done_before)), spec("third", depends_on=(blocker,))], T0
    )
    [fourth] = await store.submit("alice", [spec("fourth", depends_on=(second, third))], T0)
    [ready] = await store.submit("alice", [spec("ready", depends_on=(done_before,))], T0)
    assert (await store.get(ready)).status is JobStatus.QUEUED, "its dependency was DONE at submit"
    assert await store.finish(first, "d1", Outcome(JobStatus.ERROR, T0, return_code=1))
    assert (await store.get(second)).reason == f"dependency job {first} ended error"
    assert (await store.get(fourth)).reason == f"dependency job {second} ended error", "the chain settles fully"
    counts = await store.counts("alice")
    assert counts[JobStatus.WAITING] == len(unrelated) + 1 and counts[JobStatus.ERROR] == 3
    assert await store.finish(blocker, "d1", Outcome(JobStatus.DONE, T0))
    assert (await store.counts("alice"))[JobStatus.WAITING] == 0
    assert {j.status for j in await store.list_jobs("alice", JobQuery(ids=(*unrelated, third)))} == {JobStatus.QUEUED}


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


# -- idempotency keys ------------------------------------------------------------------------


async def test_a_retried_submit_with_the_same_key_returns_the_same_job(store: JobStore) -> None:
    [first] = await store.submit("alice", [spec("a", idempotency_key="k1")], T0)
    retried = await store.submit("alice", [spec("a", idempotency_key="k1")], T0 + timedelta(seconds=5))
    assert retried == [first]
    job = await store.get(first)
    assert job.spec.idempotency_key == "k1" and job.created_at == T0, "the retry changed nothing"

    # within one call: the second spec with a key is the first one's job
    mixed = [spec("b", idempotency_key="k2"), spec("b", idempotency_key="k2"), spec("a", idempotency_key="k1")]
    b, b_again, a, plain, plain_again = await store.submit("alice", [*mixed, spec("plain"), spec("plain")], T0)
    assert b == b_again and a == first and b > first
    assert plain == b + 1 and plain_again == b + 2, "specs without a key are never merged"
    assert len(await store.list_jobs("alice", JobQuery())) == 4, "k1, k2 and two jobs without a key"

    # keys are per account: bob's k1 is a job of his own
    [bobs] = await store.submit("bob", [spec("a", idempotency_key="k1")], T0)
    assert bobs != first and (await store.get(bobs, "bob")).account == "bob"

    # a finished job still answers its key
    await store.claim("d1", T0, LEASE, 10)
    assert await store.finish(first, "d1", Outcome(JobStatus.DONE, T0))
    assert await store.submit("alice", [spec("a", idempotency_key="k1")], T0) == [first]


async def test_a_rejected_submit_does_not_take_its_keys(store: JobStore) -> None:
    with pytest.raises(InvalidArgument):
        await store.submit("alice", [spec("a", idempotency_key="k"), spec("b", depends_on=(10_000,))], T0)
    [job_id] = await store.submit("alice", [spec("a", idempotency_key="k")], T0)
    assert [j.id for j in await store.list_jobs("alice", JobQuery())] == [job_id]


async def test_concurrent_submits_with_the_same_key_make_one_job(store: JobStore) -> None:
    batch = [spec(f"job {n}", idempotency_key=f"k{n}") for n in range(5)]
    results = await asyncio.gather(*(store.submit("alice", batch, T0) for _ in range(8)))
    assert all(ids == results[0] for ids in results), results
    assert [j.id for j in await store.list_jobs("alice", JobQuery())] == sorted(results[0])


def _submit_in_process(kind: str, target: str, out: multiprocessing.Queue[list[int]]) -> None:
    async def submit_all() -> list[int]:
        backend = _open_shared(kind, target)
        await backend.initialize()
        try:
            return [(await backend.submit("alice", [spec(idempotency_key=f"k{n}")], T0))[0] for n in range(20)]
        finally:
            await backend.close()

    out.put(asyncio.run(submit_all()))


@pytest.mark.parametrize("kind", PROCESS_BACKENDS)
async def test_concurrent_submits_with_the_same_key_from_processes_make_one_job(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fixture = {"postgres": "postgres_url", "mongodb": "mongo_database"}.get(kind)
    target: str = request.getfixturevalue(fixture) if fixture else str(tmp_path / "shared.db")
    backend = _open_shared(kind, target)
    await backend.initialize()  # the schema exists before the workers race
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    workers = [context.Process(target=_submit_in_process, args=(kind, target, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert all(ids == results[0] for ids in results), results
    assert [j.id for j in await backend.list_jobs("alice", JobQuery())] == sorted(results[0])
    await backend.close()


# -- output of running jobs ------------------------------------------------------------------


def out(offset: int, data: bytes) -> OutputChunk:
    return OutputChunk(Stream.STDOUT, offset, data)


def err(offset: int, data: bytes) -> OutputChunk:
    return OutputChunk(Stream.STDERR, offset, data)


async def _running(store: JobStore, owner: str = "d1", **kw: object) -> int:
    [job_id] = await store.submit("alice", [spec(**kw)], T0)
    [job] = await store.claim(owner, T0, LEASE, 1)
    assert job.id == job_id
    return job_id


async def test_output_appended_while_running_is_visible_and_readable_from_an_offset(store: JobStore) -> None:
    job_id = await _running(store)
    assert await store.read_output(job_id, Stream.STDOUT, 0) == b""
    assert await store.append_output(job_id, "d1", [out(0, b"hello "), err(0, b"warn\n")])
    assert await store.append_output(job_id, "d1", [out(6, b"world"), out(11, b"\n")])
    job = await store.get(job_id, "alice")
    assert job.status is JobStatus.PROCESSING and job.stdout == b"hello world\n" and job.stderr == b"warn\n"
    assert await store.read_output(job_id, Stream.STDOUT, 0, "alice") == b"hello world\n"
    assert await store.read_output(job_id, Stream.STDOUT, 3) == b"lo world\n", "from inside a chunk"
    assert await store.read_output(job_id, Stream.STDOUT, 6) == b"world\n", "from a chunk boundary"
    assert await store.read_output(job_id, Stream.STDOUT, 12) == b"", "from the end"
    assert await store.read_output(job_id, Stream.STDOUT, 99) == b""
    assert await store.read_output(job_id, Stream.STDERR, 2) == b"rn\n"
    with pytest.raises(NotFound):
        await store.read_output(job_id, Stream.STDOUT, 0, "bob")
    with pytest.raises(NotFound):
        await store.read_output(10_000, Stream.STDOUT, 0)
    [queued] = await store.submit("alice", [spec()], T0)
    assert await store.read_output(queued, Stream.STDOUT, 0) == b""


async def test_uint64_offsets_and_ids_are_past_the_end_or_not_found(store: JobStore) -> None:
    """Offsets and ids arrive as uint64: past 2**31 and 2**63 they must not overflow."""
    running = await _running(store)
    assert await store.append_output(running, "d1", [out(0, b"so far")])
    [done] = await store.submit("alice", [spec()], T0)
    assert [j.id for j in await store.claim("d1", T0, LEASE, 1)] == [done]
    assert await store.finish(done, "d1", Outcome(JobStatus.DONE, T0, stdout=b"all of it"))
    for job_id in (running, done):
        for offset in (2**31, 2**40, 2**63 - 1, 2**63, 2**64 - 1):
            assert await store.read_output(job_id, Stream.STDOUT, offset) == b"", (job_id, offset)
    assert await store.read_output(done, Stream.STDOUT, 4) == b"of it"
    for huge in (2**40, 2**63, 2**64 - 1):
        with pytest.raises(NotFound):
            await store.get(huge)
        with pytest.raises(NotFound):
            await store.read_output(huge, Stream.STDOUT, 2**63)
        with pytest.raises(NotFound):
            await store.request_kill(huge, "alice", T0)
        with pytest.raises(InvalidArgument):
            await store.submit("alice", [spec(depends_on=(huge,))], T0)
        assert await store.kill_requested([huge]) == set()
        assert await store.list_jobs("alice", JobQuery(ids=(huge,))) == []
        assert await store.list_jobs("alice", JobQuery(after_id=huge)) == []
    assert len(await store.list_jobs("alice", JobQuery(before_id=2**64 - 1))) == 2


async def test_get_without_output_skips_a_running_jobs_chunks(store: JobStore) -> None:
    job_id = await _running(store)
    assert await store.append_output(job_id, "d1", [out(0, b"so far"), err(0, b"warn")])
    job = await store.get(job_id, "alice", with_output=False)
    assert job.status is JobStatus.PROCESSING and job.lease_owner == "d1" and job.attempts == 1
    assert job.stdout == b"" and job.stderr == b""
    assert (await store.get(job_id, "alice")).stdout == b"so far", "with output by default"
    with pytest.raises(NotFound):
        await store.get(job_id, "bob", with_output=False)
    assert await store.finish(job_id, "d1", Outcome(JobStatus.DONE, T0, stdout=b"final"))
    assert (await store.get(job_id, with_output=False)).stdout == b"final", "a finished job's output is its row"


async def test_append_after_losing_the_lease_stores_nothing(store: JobStore) -> None:
    job_id = await _running(store, restartable=True)
    assert await store.append_output(job_id, "d1", [out(0, b"first run\n")])
    assert not await store.append_output(job_id, "intruder", [out(10, b"not mine\n")])
    assert (await store.get(job_id)).stdout == b"first run\n"
    [requeued] = await store.reap_expired(T0 + LEASE * 2, max_attempts=3)
    assert requeued.status is JobStatus.QUEUED
    assert not await store.append_output(job_id, "d1", [out(10, b"late\n")]), "a queued job has no lease"
    [again] = await store.claim("d2", T0 + LEASE * 3, LEASE, 1)
    assert not await store.append_output(job_id, "d1", [out(0, b"zombie\n")]), "d2 holds it now"
    assert again.stdout == b"" and await store.read_output(job_id, Stream.STDOUT, 0) == b""
    assert await store.append_output(job_id, "d2", [out(0, b"second run\n")])
    assert (await store.get(job_id)).stdout == b"second run\n"
    await store.finish(job_id, "d2", Outcome(JobStatus.DONE, T0 + LEASE * 3, stdout=b"second run\n"))
    assert not await store.append_output(job_id, "d2", [out(11, b"after the end\n")]), "a finished job"
    assert (await store.get(job_id)).stdout == b"second run\n"


async def test_a_retried_append_is_harmless(store: JobStore) -> None:
    job_id = await _running(store)
    first = [out(0, b"ab"), out(2, b"cd"), err(0, b"e")]
    assert await store.append_output(job_id, "d1", first)
    assert await store.append_output(job_id, "d1", first), "the same append again"
    assert await store.append_output(job_id, "d1", [out(2, b"cd"), out(4, b"ef"), err(1, b"")])
    assert await store.append_output(job_id, "d1", [])
    job = await store.get(job_id)
    assert job.stdout == b"abcdef" and job.stderr == b"e"


async def test_a_retried_append_with_more_bytes_stores_exactly_the_new_ones(store: JobStore) -> None:
    """An append that raised StoreUnavailable may have committed; the writer retries from
    the same offset with more bytes (merged with newer output)."""
    data = b"0123456789ab"
    job_id = await _running(store)
    assert await store.append_output(job_id, "d1", [out(0, data[:4]), err(0, b"e")])
    assert await store.append_output(job_id, "d1", [out(0, data), err(0, b"ef")])
    assert (await store.get(job_id)).stdout == data and (await store.get(job_id)).stderr == b"ef"
    assert await store.read_output(job_id, Stream.STDOUT, 0) == data
    assert await store.read_output(job_id, Stream.STDOUT, 6) == data[6:]
    assert await store.append_output(job_id, "d1", [out(10, b"abcd"), out(12, b"cdef"), out(2, b"23")])
    assert await store.read_output(job_id, Stream.STDOUT, 0) == data + b"cdef"
    assert await store.finish(job_id, "d1", Outcome(JobStatus.DONE, T0))


async def test_a_gap_in_appended_output_is_never_bridged(store: JobStore) -> None:
    job_id = await _running(store)
    assert await store.append_output(job_id, "d1", [out(0, b"0123"), out(8, b"89ab")])
    assert (await store.get(job_id)).stdout == b"0123", "the stream stops at the gap"
    assert await store.read_output(job_id, Stream.STDOUT, 0) == b"0123"
    assert await store.read_output(job_id, Stream.STDOUT, 2) == b"23"
    assert await store.read_output(job_id, Stream.STDOUT, 4) == b""
    assert await store.read_output(job_id, Stream.STDOUT, 9) == b"", "past the gap is past the stream's end"
    assert [j.stdout for j in await store.owned("d1")] == [b"0123"]
    [stalled] = await store.reap_expired(T0 + LEASE * 2, max_attempts=3)
    assert stalled.status is JobStatus.STALLED and stalled.stdout == b"0123", "the kept output stops there too"


async def test_finish_replaces_appended_output(store: JobStore) -> None:
    job_id = await _running(store)
    assert await store.append_output(job_id, "d1", [out(0, b"partial, truncated"), err(0, b"noise")])
    final = Outcome(JobStatus.DONE, T0 + timedelta(seconds=1), return_code=0, stdout=b"the whole output\n")
    assert await store.finish(job_id, "d1", final)
    job = await store.get(job_id)
    assert job.stdout == b"the whole output\n" and job.stderr == b"", "the outcome's output, not the chunks"
    assert await store.read_output(job_id, Stream.STDOUT, 4) == b"whole output\n"
    assert await store.read_output(job_id, Stream.STDERR, 0) == b""


async def test_requeued_job_waits_for_its_backoff(store: JobStore) -> None:
    job_id = await _running(store, restartable=True)
    assert await store.append_output(job_id, "d1", [out(0, b"lost with its runner")])
    reaped_at = T0 + LEASE * 2
    [job] = await store.reap_expired(reaped_at, max_attempts=10)
    assert job.status is JobStatus.QUEUED and job.run_after == reaped_at + timedelta(seconds=1)
    assert job.stdout == b"" and await store.read_output(job_id, Stream.STDOUT, 0) == b"", "output discarded"
    [other] = await store.submit("alice", [spec("newer")], reaped_at)
    assert [j.id for j in await store.claim("d2", reaped_at, LEASE, 5)] == [other], "the backoff holds it back"
    await store.finish(other, "d2", Outcome(JobStatus.DONE, reaped_at))
    now = reaped_at + timedelta(seconds=1)
    [again] = await store.claim("d2", now, LEASE, 5)
    assert again.id == job_id and again.attempts == 2
    # 1 s doubling per lost attempt, at most 60 s
    waits = [1]
    for _ in range(8):
        now += LEASE * 2
        [job] = await store.reap_expired(now, max_attempts=10)
        waits.append(int((job.run_after - now).total_seconds()) if job.run_after else -1)
        now += timedelta(seconds=waits[-1])
        assert [j.id for j in await store.claim("d2", now, LEASE, 1)] == [job_id]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


async def test_owned_lists_the_processing_jobs_of_an_owner(store: JobStore) -> None:
    ids = await store.submit("alice", [spec(str(n)) for n in range(4)], T0)
    await store.claim("d1", T0, LEASE, 2)
    await store.claim("d2", T0, LEASE, 1)
    assert await store.append_output(ids[1], "d1", [out(0, b"so far")])
    assert [j.id for j in await store.owned("d1")] == ids[:2]
    owned = {j.id: j for j in await store.owned("d1")}
    assert owned[ids[1]].stdout == b"so far" and owned[ids[1]].lease_owner == "d1"
    assert [j.id for j in await store.owned("d2")] == [ids[2]]
    assert await store.owned("nobody") == []
    await store.finish(ids[0], "d1", Outcome(JobStatus.DONE, T0))
    late = T0 + LEASE * 2
    assert [j.id for j in await store.owned("d1")] == [ids[1]], "finished jobs are not owned"
    assert [j.id for j in await store.owned("d2")] == [ids[2]], "an expired lease is still owned until reaped"
    await store.reap_expired(late, max_attempts=3)
    assert await store.owned("d1") == [] and await store.owned("d2") == []


async def test_stalled_job_keeps_its_output(store: JobStore) -> None:
    plain, killed = await store.submit("alice", [spec("plain"), spec("killed", restartable=True)], T0)
    await store.claim("dead", T0, LEASE, 2)
    for job_id in (plain, killed):
        assert await store.append_output(job_id, "dead", [out(0, b"up to "), out(6, b"here"), err(0, b"oops")])
    await store.request_kill(killed, "alice", T0)
    reaped = {j.id: j for j in await store.reap_expired(T0 + LEASE * 2, max_attempts=3)}
    assert reaped[plain].status is JobStatus.STALLED and reaped[killed].status is JobStatus.KILLED
    for job_id in (plain, killed):
        job = await store.get(job_id)
        assert job.stdout == b"up to here" and job.stderr == b"oops" and reaped[job_id].stdout == b"up to here"
        assert await store.read_output(job_id, Stream.STDOUT, 6) == b"here"
    assert not await store.append_output(plain, "dead", [out(10, b"!")])


async def test_large_output_across_many_chunks(store: JobStore) -> None:
    job_id = await _running(store)
    data = os.urandom(6 << 20)  # 6 MiB in 96 appends of 64 KiB
    size = 64 << 10
    for start in range(0, len(data), size):
        assert await store.append_output(job_id, "d1", [out(start, data[start : start + size])])
    assert (await store.get(job_id)).stdout == data
    middle = len(data) // 2 + 12345
    assert await store.read_output(job_id, Stream.STDOUT, middle) == data[middle:]
    assert await store.read_output(job_id, Stream.STDOUT, len(data) - 10) == data[-10:]
    assert await store.finish(job_id, "d1", Outcome(JobStatus.DONE, T0, return_code=0, stdout=data))
    assert (await store.get(job_id)).stdout == data
    assert await store.read_output(job_id, Stream.STDOUT, middle) == data[middle:]


# -- upgrades of existing databases ----------------------------------------------------------

OLD_SPEC = json.dumps({"cmd": "echo old", "name": "old", "restartable": True})  # as schema 1 stored it


async def test_sqlite_database_at_schema_1_upgrades_and_keeps_its_jobs(tmp_path: Path) -> None:
    from cloudpipe_server.store.sqlite import SqliteJobStore
    from cloudpipe_server.store.sqlite_schema import MIGRATIONS

    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO jobs (account, name, status, spec, created_at) VALUES ('alice', 'old', 'queued', ?, ?)",
            (OLD_SPEC, to_ns(T0)),
        )
    backend = SqliteJobStore(path)
    await backend.initialize()
    try:
        await _old_job_works_after_the_upgrade(backend)
    finally:
        await backend.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_sqlite_waiting_jobs_stored_before_the_upgrade_still_settle(tmp_path: Path) -> None:
    from cloudpipe_server.store.sqlite import SqliteJobStore
    from cloudpipe_server.store.sqlite_schema import MIGRATIONS

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
    backend = SqliteJobStore(path)
    await backend.initialize()
    try:
        assert await backend.finish(1, "d1", Outcome(JobStatus.KILLED, T0))
        assert [(await backend.get(i)).status for i in (2, 3)] == [JobStatus.ERROR, JobStatus.ERROR]
    finally:
        await backend.close()


async def test_postgres_database_at_schema_1_upgrades_and_keeps_its_jobs(postgres_url: str) -> None:
    import psycopg

    from cloudpipe_server.store.postgres import PostgresJobStore
    from cloudpipe_server.store.postgres_schema import MIGRATIONS

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await conn.execute(MIGRATIONS[0].encode())
        await conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        await conn.execute(
            "INSERT INTO jobs (account, name, status, spec, created_at) VALUES ('alice', 'old', 'queued', %s, %s)",
            (OLD_SPEC, to_ns(T0)),
        )
    backend = PostgresJobStore(postgres_url)
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

    from cloudpipe_server.store.mongodb import MongoJobStore

    client: Any = mongomock.MongoClient()
    old = {"_id": 1, "account": "alice", "name": "old", "status": "queued", "depends_on": [], "created_at": to_ns(T0)}
    old |= {"spec": {"cmd": "echo old", "name": "old", "restartable": True, "env": [], "tags": []}, "stdin": b""}
    old |= dict.fromkeys(["started_at", "container_started_at", "finished_at", "return_code", "collected"])
    old |= {"reason": "", "kill_requested": False, "attempts": 0, "container_id": "", "lease_owner": ""}
    old |= {"lease_expires_at": None, "stdout": b"", "stderr": b"", "result": b""}
    client.cloudpipe.jobs.insert_one(old)
    client.cloudpipe.counters.insert_one({"_id": "jobs", "seq": 1})
    backend = MongoJobStore("mongodb://mongomock", database="cloudpipe", client=client, transactions=False)
    await backend.initialize()
    with atomic_writes():
        ids = await _old_job_works_after_the_upgrade(backend)
    await backend.submit("alice", [spec("no key"), spec("no key")], T0)
    again = MongoJobStore("mongodb://mongomock", database="cloudpipe", client=client, transactions=False)
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


# -- MongoDB without transactions: the races its documents cannot rule out -------------------


async def test_mongodb_a_key_stored_by_a_racing_submit_answers_with_that_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """A standalone server has no transaction around look-up and insert: another submit
    can store a key in between. The unique index catches it (mongomock double)."""
    import mongomock

    from cloudpipe_server.store.mongodb import MongoJobStore

    client: Any = mongomock.MongoClient()
    mine, racer = (MongoJobStore("mongodb://mongomock", client=client, transactions=False) for _ in range(2))
    await mine.initialize()
    await racer.initialize()
    insert = mine._insert

    def racer_first(documents: list[dict[str, Any]], session: Any) -> list[int]:
        racer._submit("alice", [spec("the racer's", idempotency_key="k2")], T0)  # after our look-up
        return insert(documents, session)

    monkeypatch.setattr(mine, "_insert", racer_first)
    batch = [spec("a", idempotency_key="k1"), spec("b", idempotency_key="k2"), spec("c", idempotency_key="k3")]
    a, b, c, plain = await mine.submit("alice", [*batch, spec("no key")], T0)
    monkeypatch.undo()
    assert (await mine.get(b)).spec.cmd == "the racer's"
    assert await racer.submit("alice", [spec(idempotency_key="k2")], T0) == [b]
    stored = {j.id: j.spec.cmd for j in await mine.list_jobs("alice", JobQuery())}
    assert stored == {a: "a", b: "the racer's", c: "c", plain: "no key"}, "our k2 job was not stored"


async def test_mongodb_append_racing_the_reaper_stores_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lease is lost between the append's check and its insert (mongomock double)."""
    import mongomock
    from mongomock.collection import Collection

    from cloudpipe_server.store.mongodb import MongoJobStore

    client: Any = mongomock.MongoClient()
    backend = MongoJobStore("mongodb://mongomock", client=client, transactions=False)
    await backend.initialize()
    job_id = await _running(backend, restartable=True)
    insert_many = Collection.insert_many

    def reaped_first(self: Any, documents: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == "job_output":
            backend._reap_expired(T0 + LEASE * 2, 3)
        return insert_many(self, documents, *args, **kwargs)

    monkeypatch.setattr(Collection, "insert_many", reaped_first)
    assert not await backend.append_output(job_id, "d1", [out(0, b"too late")])
    monkeypatch.undo()
    assert client.cloudpipe.job_output.count_documents({}) == 0
    [again] = await backend.claim("d2", T0 + LEASE * 3, LEASE, 1)
    assert again.id == job_id and await backend.read_output(job_id, Stream.STDOUT, 0) == b""
