"""The JobStore contract, output of running jobs: appended, read from an offset,
replaced when the job finishes, kept when it stalls."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta

import pytest

from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.models import JobQuery, JobStatus, Outcome, Stream
from cloudpipe_server.store import JobStore
from tests.contract.common import LEASE, T0, claimed_job, err, out, spec


async def test_output_appended_while_running_is_visible_and_readable_from_an_offset(store: JobStore) -> None:
    job_id = await claimed_job(store)
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
    running = await claimed_job(store)
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
    job_id = await claimed_job(store)
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
    job_id = await claimed_job(store, restartable=True)
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
    job_id = await claimed_job(store)
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
    job_id = await claimed_job(store)
    assert await store.append_output(job_id, "d1", [out(0, data[:4]), err(0, b"e")])
    assert await store.append_output(job_id, "d1", [out(0, data), err(0, b"ef")])
    assert (await store.get(job_id)).stdout == data and (await store.get(job_id)).stderr == b"ef"
    assert await store.read_output(job_id, Stream.STDOUT, 0) == data
    assert await store.read_output(job_id, Stream.STDOUT, 6) == data[6:]
    assert await store.append_output(job_id, "d1", [out(10, b"abcd"), out(12, b"cdef"), out(2, b"23")])
    assert await store.read_output(job_id, Stream.STDOUT, 0) == data + b"cdef"
    assert await store.finish(job_id, "d1", Outcome(JobStatus.DONE, T0))


async def test_a_gap_in_appended_output_is_never_bridged(store: JobStore) -> None:
    job_id = await claimed_job(store)
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
    job_id = await claimed_job(store)
    assert await store.append_output(job_id, "d1", [out(0, b"partial, truncated"), err(0, b"noise")])
    final = Outcome(JobStatus.DONE, T0 + timedelta(seconds=1), return_code=0, stdout=b"the whole output\n")
    assert await store.finish(job_id, "d1", final)
    job = await store.get(job_id)
    assert job.stdout == b"the whole output\n" and job.stderr == b"", "the outcome's output, not the chunks"
    assert await store.read_output(job_id, Stream.STDOUT, 4) == b"whole output\n"
    assert await store.read_output(job_id, Stream.STDERR, 0) == b""


async def test_requeued_job_waits_for_its_backoff(store: JobStore) -> None:
    job_id = await claimed_job(store, restartable=True)
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
    job_id = await claimed_job(store)
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


async def test_a_summary_list_leaves_the_outputs_out_and_keeps_everything_else(store: JobStore) -> None:
    job_id = await claimed_job(store, stdin=b"the input " * 1000)
    big = os.urandom(1 << 20)
    outcome = Outcome(JobStatus.DONE, T0, return_code=0, stdout=big, stderr=b"warn", result=b"r" * 500)
    assert await store.finish(job_id, "d1", outcome)
    [full] = await store.list_jobs("alice", JobQuery(ids=(job_id,)))
    [summary] = await store.list_jobs("alice", JobQuery(ids=(job_id,), with_output=False))
    assert (full.stdout, full.stderr, full.result, full.spec.stdin) == (big, b"warn", b"r" * 500, b"the input " * 1000)
    assert (summary.stdout, summary.stderr, summary.result, summary.spec.stdin) == (b"", b"", b"", b"")
    stripped = replace(full, stdout=b"", stderr=b"", result=b"", spec=replace(full.spec, stdin=b""))
    assert summary == stripped  # every other field read as in the full row
