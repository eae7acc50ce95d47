"""The JobStore contract of the overview, against every backend: queue counts of every
account (`counts_by_account`), and finished jobs per account, status and minute with
their run time (`finished_since`), for one account or all."""

from __future__ import annotations

from datetime import timedelta

from cloudpipe_server.models import JobStatus, Outcome
from cloudpipe_server.store import JobStore
from cloudpipe_server.store.base import FinishedCount
from tests.contract.common import LEASE, T0, spec

MINUTE = timedelta(minutes=1)


async def run(store: JobStore, account: str, status: JobStatus, started_after: timedelta, ran: timedelta) -> int:
    """One job of `account` claimed (started) at T0 + `started_after`, finished `ran` later."""
    [job_id] = await store.submit(account, [spec("x")], T0 + started_after)
    claimed = await store.claim("d1", T0 + started_after, LEASE, 10)
    assert [j.id for j in claimed] == [job_id]
    assert await store.finish(job_id, "d1", Outcome(status, T0 + started_after + ran, return_code=0))
    return job_id


async def test_counts_by_account_cover_every_account_and_status(store: JobStore) -> None:
    assert await store.counts_by_account() == {}
    await run(store, "bob", JobStatus.DONE, timedelta(0), MINUTE)
    await store.submit("alice", [spec("a"), spec("b")], T0)
    await store.submit("bob", [spec("c")], T0)
    counts = await store.counts_by_account()
    assert set(counts) == {"alice", "bob"}
    assert all(set(per) == set(JobStatus) for per in counts.values())
    assert counts["alice"][JobStatus.QUEUED] == 2 and sum(counts["alice"].values()) == 2
    assert counts["bob"][JobStatus.QUEUED] == 1 and counts["bob"][JobStatus.DONE] == 1


async def test_finished_jobs_are_counted_per_account_status_and_minute_with_run_time(store: JobStore) -> None:
    await run(store, "alice", JobStatus.DONE, timedelta(seconds=10), timedelta(seconds=20))  # ends 0:30, minute 0
    await run(store, "alice", JobStatus.DONE, timedelta(seconds=40), timedelta(seconds=15))  # ends 0:55, minute 0
    await run(store, "alice", JobStatus.ERROR, timedelta(minutes=2), timedelta(seconds=5))  # minute 2
    await run(store, "bob", JobStatus.DONE, timedelta(minutes=3), timedelta(seconds=1))  # minute 3
    await run(store, "bob", JobStatus.DONE, -timedelta(minutes=5), timedelta(seconds=1))  # before `since`
    await store.submit("alice", [spec("never ran")], T0)
    since = T0

    everyone = sorted(await store.finished_since(since), key=lambda c: (c.account, c.minute))
    assert everyone == [
        FinishedCount("alice", 0, JobStatus.DONE, 2, 35_000_000_000),
        FinishedCount("alice", 2, JobStatus.ERROR, 1, 5_000_000_000),
        FinishedCount("bob", 3, JobStatus.DONE, 1, 1_000_000_000),
    ]
    assert sorted(await store.finished_since(since, "bob"), key=lambda c: c.minute) == [everyone[2]]
    assert await store.finished_since(since, "carol") == []
    assert await store.finished_since(T0 + timedelta(hours=1)) == []


async def test_a_job_killed_before_it_started_counts_without_run_time(store: JobStore) -> None:
    [job_id] = await store.submit("alice", [spec("x")], T0)
    await store.request_kill(job_id, "alice", T0 + timedelta(seconds=5))
    killed = await store.finished_since(T0, "alice")
    assert killed == [FinishedCount("alice", 0, JobStatus.KILLED, 1, 0)]
