"""The JobStore contract of attempt history, against every backend: every change that
ends an attempt (`finish`, `reap_expired`) records it with the change, an unclaimed
attempt is not recorded, the history is bounded, and it goes with its job."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from cloudpipe_server.errors import NotFound
from cloudpipe_server.models import ATTEMPT_REASON_BYTES, ATTEMPTS_KEPT, JobStatus, Outcome
from cloudpipe_server.store import JobStore, Stores
from tests.contract.common import LEASE, T0, claimed_job, spec

SECOND = timedelta(seconds=1)


async def test_a_finished_attempt_is_recorded_with_how_it_ended(store: JobStore) -> None:
    job_id = await claimed_job(store)
    assert await store.attempts(job_id, "alice") == [], "a running attempt is not history yet"
    ended = T0 + 3 * SECOND
    assert await store.finish(job_id, "d1", Outcome(JobStatus.ERROR, ended, reason="exit 3", return_code=3))
    [attempt] = await store.attempts(job_id, "alice")
    assert (attempt.job_id, attempt.number, attempt.status) == (job_id, 1, JobStatus.ERROR)
    assert (attempt.started_at, attempt.ended_at) == (T0, ended)
    assert (attempt.return_code, attempt.reason, attempt.owner) == (3, "exit 3", "d1")
    with pytest.raises(NotFound):
        await store.attempts(job_id, "bob")
    with pytest.raises(NotFound):
        await store.attempts(job_id + 1000)


async def test_a_lost_runner_requeued_then_a_success_make_two_attempts(store: JobStore) -> None:
    [job_id] = await store.submit("alice", [spec("again", restartable=True)], T0)
    await store.claim("dead", T0, LEASE, 1)
    lost_at = T0 + LEASE * 2
    [reaped] = await store.reap_expired(lost_at, max_attempts=3)
    assert reaped.status is JobStatus.QUEUED
    assert reaped.run_after is not None
    [second] = await store.claim("d2", reaped.run_after, LEASE, 1)
    assert second.attempts == 2
    done_at = reaped.run_after + 2 * SECOND
    assert await store.finish(job_id, "d2", Outcome(JobStatus.DONE, done_at, return_code=0), attempt=2)
    first, last = await store.attempts(job_id)
    assert (first.number, first.status, first.owner) == (1, JobStatus.QUEUED, "dead")
    assert (first.started_at, first.ended_at) == (T0, lost_at)
    assert first.return_code is None and "requeued" in first.reason
    assert (last.number, last.status, last.owner, last.return_code) == (2, JobStatus.DONE, "d2", 0)
    assert (last.started_at, last.ended_at) == (reaped.run_after, done_at)


async def test_stalled_and_killed_attempts_end_as_their_jobs_do(store: JobStore) -> None:
    plain, flagged = await store.submit("alice", [spec("plain"), spec("flagged")], T0)
    await store.claim("dead", T0, LEASE, 2)
    await store.request_kill(flagged, "alice", T0)
    await store.reap_expired(T0 + LEASE * 2, max_attempts=3)
    [stalled] = await store.attempts(plain)
    assert stalled.status is JobStatus.STALLED and "not restartable" in stalled.reason
    [killed] = await store.attempts(flagged)
    assert killed.status is JobStatus.KILLED

    finished = await claimed_job(store)
    await store.request_kill(finished, "alice", T0)
    await store.finish(finished, "d1", Outcome(JobStatus.ERROR, T0 + SECOND, return_code=137))
    [attempt] = await store.attempts(finished)
    assert attempt.status is JobStatus.KILLED, "a requested kill turns ERROR into KILLED, in the history too"


async def test_an_unclaimed_attempt_is_not_recorded(store: JobStore) -> None:
    job_id = await claimed_job(store)
    assert await store.unclaim(job_id, "d1", T0, "requeued: it could not start")
    [again] = await store.claim("d1", T0 + SECOND, LEASE, 1)
    assert again.attempts == 1
    await store.finish(job_id, "d1", Outcome(JobStatus.DONE, T0 + 2 * SECOND, return_code=0))
    assert [(a.number, a.status) for a in await store.attempts(job_id)] == [(1, JobStatus.DONE)]


async def test_a_lost_lease_records_no_attempt(store: JobStore) -> None:
    job_id = await claimed_job(store)
    assert not await store.finish(job_id, "intruder", Outcome(JobStatus.DONE, T0))
    assert not await store.finish(job_id, "d1", Outcome(JobStatus.DONE, T0), attempt=2)
    assert await store.attempts(job_id) == []


async def test_an_attempt_keeps_a_bounded_reason(store: JobStore) -> None:
    job_id = await claimed_job(store)
    reason = "é" * ATTEMPT_REASON_BYTES  # two bytes each: cut in the middle of the string, never of a character
    await store.finish(job_id, "d1", Outcome(JobStatus.ERROR, T0, reason=reason, return_code=1))
    assert (await store.get(job_id)).reason == reason, "the job keeps its whole reason"
    [attempt] = await store.attempts(job_id)
    assert attempt.reason == "é" * (ATTEMPT_REASON_BYTES // 2)


async def test_only_the_latest_attempts_are_kept(store: JobStore) -> None:
    [job_id] = await store.submit("alice", [spec("again", restartable=True)], T0)
    now: datetime = T0
    total = ATTEMPTS_KEPT + 2
    for _ in range(total - 1):
        assert len(await store.claim("dead", now, LEASE, 1)) == 1
        [reaped] = await store.reap_expired(now + LEASE * 2, max_attempts=total)
        assert reaped.status is JobStatus.QUEUED and reaped.run_after is not None
        now = reaped.run_after
    [last] = await store.claim("d1", now, LEASE, 1)
    assert last.attempts == total
    await store.finish(job_id, "d1", Outcome(JobStatus.DONE, now + SECOND, return_code=0))
    kept = await store.attempts(job_id)
    assert [a.number for a in kept] == list(range(total - ATTEMPTS_KEPT + 1, total + 1))
    assert kept[-1].status is JobStatus.DONE and {a.status for a in kept[:-1]} == {JobStatus.QUEUED}


async def test_deleting_a_job_deletes_its_attempts(stores: Stores) -> None:
    store = stores.jobs
    kept, deleted, purged = await store.submit("alice", [spec("kept"), spec("deleted"), spec("purged")], T0)
    await store.claim("d1", T0, LEASE, 3)
    for job_id, at in ((kept, T0 + timedelta(days=2)), (deleted, T0), (purged, T0)):
        await store.finish(job_id, "d1", Outcome(JobStatus.DONE, at, return_code=0))
    assert await store.delete_finished("alice", [deleted]) == [deleted]
    purge = await store.purge(None, T0 + timedelta(days=1), 10)
    assert purge.jobs == 1
    assert await stored_attempts(stores) == {kept: 1}
    assert len(await store.attempts(kept)) == 1


async def stored_attempts(stores: Stores) -> dict[int, int]:
    """Attempts as stored, counted per job id, read beside the store's API: rows of
    `job_attempts` in SQL, elements of `attempt_log` in MongoDB's job documents."""
    database = stores.database
    from cloudpipe_common.sqlite import SqliteDatabase

    if isinstance(database, SqliteDatabase):
        query = "SELECT job_id, COUNT(*) AS n FROM job_attempts GROUP BY job_id"
        rows = await database.run(lambda conn: conn.execute(query).fetchall())
        return {row["job_id"]: row["n"] for row in rows}
    from cloudpipe_server.store.postgres.database import PostgresDatabase

    if isinstance(database, PostgresDatabase):
        async with database.connection() as conn:
            cursor = await conn.execute("SELECT job_id, COUNT(*) AS n FROM job_attempts GROUP BY job_id")
            return {row["job_id"]: row["n"] for row in await cursor.fetchall()}
    from cloudpipe_server.store.mongodb.database import MongoDatabase

    assert isinstance(database, MongoDatabase)
    docs = list(database.db["jobs"].find({}, {"attempt_log": 1}))
    return {doc["_id"]: len(doc.get("attempt_log", [])) for doc in docs}
