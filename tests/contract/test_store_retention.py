"""The JobStore contract of removal, against every backend: `delete_finished` (the
caller's `rm`) removes finished jobs only, all or none, and `purge` (retention) removes
old output and old jobs in bounded batches, never a job a waiting job depends on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cloudpipe_server.errors import FailedPrecondition, NotFound
from cloudpipe_server.models import JobQuery, JobStatus, Outcome, Stream
from cloudpipe_server.store import JobStore
from cloudpipe_server.store.base import Purged
from tests.contract.common import LEASE, T0, spec

HOUR = timedelta(hours=1)


async def finished(store: JobStore, count: int, at: timedelta = timedelta(0), account: str = "alice") -> list[int]:
    """`count` DONE jobs of `account` with output, finished at T0 + `at`."""
    ids = await store.submit(account, [spec(f"job {n}", stdin=b"input") for n in range(count)], T0)
    claimed = await store.claim("d1", T0, LEASE, count)
    assert sorted(j.id for j in claimed) == ids
    for job_id in ids:
        outcome = Outcome(JobStatus.DONE, T0 + at, return_code=0, stdout=b"out", stderr=b"err", result=b"res")
        assert await store.finish(job_id, "d1", outcome)
    return ids


async def test_a_finished_job_is_deleted_with_its_output(store: JobStore) -> None:
    first, second = await finished(store, 2)
    assert await store.delete_finished("alice", [second, second]) == [second]
    with pytest.raises(NotFound):
        await store.get(second, "alice")
    with pytest.raises(NotFound):
        await store.read_output(second, Stream.STDOUT, 0)
    assert [j.id for j in await store.list_jobs("alice", JobQuery())] == [first]
    assert (await store.counts("alice"))[JobStatus.DONE] == 1


async def test_deleting_refuses_unfinished_and_foreign_jobs_and_deletes_nothing_then(store: JobStore) -> None:
    [done] = await finished(store, 1)
    [bobs] = await finished(store, 1, account="bob")
    [queued] = await store.submit("alice", [spec("later")], T0)
    with pytest.raises(FailedPrecondition, match=f"job {queued} is queued"):
        await store.delete_finished("alice", [done, queued])
    with pytest.raises(NotFound):
        await store.delete_finished("alice", [done, bobs])  # another account's job is a missing one
    with pytest.raises(NotFound):
        await store.delete_finished("alice", [done, 1 << 40])
    assert (await store.get(done, "alice")).stdout == b"out"  # all or none
    assert (await store.get(bobs, "bob")).status is JobStatus.DONE
    assert await store.delete_finished("alice", []) == []


async def test_a_finished_job_a_waiting_job_depends_on_stays(store: JobStore) -> None:
    [done] = await finished(store, 1)
    [blocker] = await store.submit("alice", [spec("blocker")], T0)
    [waiting] = await store.submit("alice", [spec("waits", depends_on=(done, blocker))], T0)
    assert (await store.get(waiting, "alice")).status is JobStatus.WAITING
    with pytest.raises(FailedPrecondition, match=f"dependency of waiting job {waiting}"):
        await store.delete_finished("alice", [done])
    assert await store.purge(None, T0 + HOUR, 100) == Purged(jobs=0)
    assert (await store.get(done, "alice")).status is JobStatus.DONE


async def test_purge_empties_old_output_then_deletes_old_jobs_in_batches(store: JobStore) -> None:
    old = await finished(store, 5)
    recent = await finished(store, 2, at=2 * HOUR)
    [running] = await store.submit("alice", [spec("runs")], T0)
    await store.claim("d1", T0, LEASE, 1)
    assert await store.purge(T0 + HOUR, None, 3) == Purged(outputs=3)
    assert await store.purge(T0 + HOUR, None, 3) == Purged(outputs=2)
    assert await store.purge(T0 + HOUR, None, 3) == Purged()  # emptied once: not counted again
    for job_id in old:
        job = await store.get(job_id, "alice")
        assert job.status is JobStatus.DONE and job.return_code == 0
        assert (job.stdout, job.stderr, job.result, job.spec.stdin) == (b"", b"", b"", b"")
    for job_id in recent:
        job = await store.get(job_id, "alice")
        assert (job.stdout, job.result, job.spec.stdin) == (b"out", b"res", b"input")
    assert await store.purge(None, T0 + HOUR, 4) == Purged(jobs=4)
    assert await store.purge(None, T0 + HOUR, 4) == Purged(jobs=1)
    left = [j.id for j in await store.list_jobs("alice", JobQuery())]
    assert left == [*recent, running]


async def test_concurrent_purges_never_count_a_job_twice(store: JobStore) -> None:
    await finished(store, 30)
    results = await asyncio.gather(*(store.purge(T0 + HOUR, T0 + HOUR, 4) for _ in range(6)))
    while (more := await store.purge(None, T0 + HOUR, 4)).jobs:
        results.append(more)
    assert sum(r.jobs for r in results) == 30
    assert await store.list_jobs("alice", JobQuery()) == []


async def test_an_account_over_its_byte_budget_loses_its_oldest_outputs_first(store: JobStore) -> None:
    # each finished job holds 14 bytes: stdout "out", stderr "err", result "res", stdin "input"
    alices = [(await finished(store, 1, at=HOUR * n))[0] for n in range(5)]  # 70 bytes
    bobs = await finished(store, 2, account="bob")  # 28 bytes: within the budget
    [queued] = await store.submit("alice", [spec("later", stdin=b"x" * 1000)], T0)  # unfinished: not counted
    assert await store.trim_output(30, 500) == 3  # 70 - 3 x 14 = 28 <= 30
    for job_id in alices[:3]:
        job = await store.get(job_id, "alice")
        assert (job.stdout, job.stderr, job.result, job.spec.stdin) == (b"", b"", b"", b"")
        assert job.status is JobStatus.DONE, "the job itself stays"
    for job_id in alices[3:] + bobs:
        job = await store.get(job_id)
        assert (job.stdout, job.result, job.spec.stdin) == (b"out", b"res", b"input")
    assert (await store.get(queued)).spec.stdin == b"x" * 1000
    assert await store.trim_output(30, 500) == 0, "within budget now"


async def test_the_byte_budget_is_trimmed_in_bounded_batches(store: JobStore) -> None:
    ids = [(await finished(store, 1, at=HOUR * n))[0] for n in range(4)]  # 56 bytes
    assert await store.trim_output(14, 1) == 1
    assert (await store.get(ids[0])).stdout == b"" and (await store.get(ids[1])).stdout == b"out"
    assert await store.trim_output(14, 500) == 2
    assert [(await store.get(i)).stdout for i in ids] == [b"", b"", b"", b"out"]
    assert await store.trim_output(0, 500) == 1  # a budget of 0 keeps nothing
    assert await store.trim_output(0, 500) == 0
