"""The JobStore contract, dependencies: WAITING jobs and how they settle."""

from __future__ import annotations

import asyncio

import pytest

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import JobQuery, JobStatus, Outcome
from cloudpipe_server.store import JobStore
from tests.contract.common import LEASE, T0, spec


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
