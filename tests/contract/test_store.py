"""The JobStore contract, run against every backend that can run here: submitting,
reading, claiming, finishing, killing and reaping jobs, and their leases. The same
contract goes on in test_store_*.py (dependencies, idempotency keys, output,
concurrency, upgrades, MongoDB's races)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cloudpipe_server.errors import NotFound
from cloudpipe_server.models import JobQuery, JobSpec, JobStatus, Outcome, Resources, ResultType
from cloudpipe_server.store import JobStore
from tests.contract.common import LEASE, T0, claimed_job, out, spec


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
        inputs={"/in/a.csv": "s3://bucket/a.csv", "/in/p": "https://example.org/p?x=1"},
        outputs={"/out/": "s3://bucket/runs/1/"},
        storage_secret="S3",
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


async def test_unfinished_accounts_are_listed_in_pages(store: JobStore) -> None:
    assert await store.unfinished_accounts("", 10) == []
    await store.submit("carol", [spec(), spec()], T0)
    await store.submit("alice", [spec()], T0)
    first, _ = await store.submit("dave", [spec(), spec()], T0)
    [waiting] = await store.submit("dave", [spec(depends_on=(first,))], T0)
    await store.submit("erin", [spec()], T0)
    claimed = await store.claim("d1", T0, LEASE, 3)  # the oldest: carol's and alice's
    assert await store.unfinished_accounts("", 10) == ["alice", "carol", "dave", "erin"]
    assert await store.unfinished_accounts("", 2) == ["alice", "carol"]
    assert await store.unfinished_accounts("carol", 2) == ["dave", "erin"]
    await store.kill_all("dave", T0)
    assert (await store.get(waiting)).status is JobStatus.KILLED
    await store.kill_all("erin", T0)
    assert await store.unfinished_accounts("", 10) == ["alice", "carol"]  # processing counts
    for job in claimed:
        if job.account != "carol":
            await store.finish(job.id, "d1", Outcome(JobStatus.DONE, T0))
    assert await store.unfinished_accounts("", 10) == ["carol"]


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
    job_id = await claimed_job(store, restartable=True)
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


async def test_unclaim_gives_a_job_that_never_started_back_to_the_queue(store: JobStore) -> None:
    job_id = await claimed_job(store)  # not restartable: the reaper would stall it
    reason = "requeued: the Docker engine did not answer"
    assert not await store.unclaim(job_id, "intruder", T0, reason)
    assert not await store.unclaim(job_id, "d1", T0, reason, attempt=2), "a stale attempt changes nothing"
    assert await store.unclaim(job_id, "d1", T0, reason, attempt=1)
    job = await store.get(job_id)
    assert job.status is JobStatus.QUEUED and job.reason == reason
    assert job.attempts == 0 and job.started_at is None and job.lease_owner == ""
    assert not await store.unclaim(job_id, "d1", T0, reason), "a queued job is held by no one"
    for _ in range(5):  # however often it happens, no attempt is used up
        [again] = await store.claim("d1", T0, LEASE, 1)
        assert again.id == job_id and again.attempts == 1
        assert await store.unclaim(job_id, "d1", T0, reason, attempt=1)
    assert await store.reap_expired(T0 + LEASE * 2, max_attempts=1) == [], "no lease is left to expire"


async def test_unclaim_ends_a_job_killed_meanwhile(store: JobStore) -> None:
    job_id = await claimed_job(store)
    await store.request_kill(job_id, "alice", T0)
    assert await store.unclaim(job_id, "d1", T0 + LEASE, "requeued", attempt=1)
    job = await store.get(job_id)
    assert job.status is JobStatus.KILLED and job.reason == "killed before it started"
    assert job.finished_at == T0 + LEASE
    assert await store.claim("d1", T0 + LEASE, LEASE, 1) == []
