"""The JobStore contract, idempotency keys: a retried submit returns the same job."""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import JobQuery, JobStatus, Outcome
from cloudpipe_server.store import JobStore
from tests.contract.backends import PROCESS_BACKENDS, open_shared, shared_target
from tests.contract.common import LEASE, T0, spec


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
        backend = open_shared(kind, target).jobs
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
    target = shared_target(kind, request, tmp_path)
    backend = open_shared(kind, target).jobs
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
