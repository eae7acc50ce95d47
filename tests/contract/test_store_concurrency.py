"""The JobStore contract, concurrency: claimers in several processes (or, on the
MongoDB double, several tasks) never claim one job twice."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from tests.contract.backends import PROCESS_BACKENDS, mongomock_stores, open_shared, shared_target
from tests.contract.common import T0, claim_until_empty, spec
from tests.contract.mongomock_double import atomic_writes


def _claim_in_process(kind: str, target: str, owner: str, out: multiprocessing.Queue[list[int]]) -> None:
    async def claim_all() -> list[int]:
        backend = open_shared(kind, target).jobs
        await backend.initialize()
        try:
            return await claim_until_empty(backend, owner)
        finally:
            await backend.close()

    out.put(asyncio.run(claim_all()))


@pytest.mark.parametrize("kind", PROCESS_BACKENDS)
async def test_concurrent_claims_from_processes_never_double_claim(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    target = shared_target(kind, request, tmp_path)
    backend = open_shared(kind, target).jobs
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

    client: Any = mongomock.MongoClient()
    stores = [mongomock_stores(client).jobs for _ in range(8)]
    for backend in stores:
        await backend.initialize()
    ids = await stores[0].submit("alice", [spec(str(i)) for i in range(300)], T0)
    with atomic_writes():
        claimed = await asyncio.gather(*(claim_until_empty(backend, f"d{i}") for i, backend in enumerate(stores)))
    everything = [job_id for batch in claimed for job_id in batch]
    assert sorted(everything) == ids, "every job claimed exactly once"
    for backend in stores:
        await backend.close()


def test_the_mongomock_double_deletes_a_document_once_under_concurrent_deletes() -> None:
    """The double itself (mongomock, used only because no MongoDB server runs here): bare,
    two threads deleting one document make the second raise KeyError (seen as a purge
    test's failure in CI); a server deletes it once and counts it once, and
    `atomic_writes()` must give the same."""
    import threading

    import mongomock

    def race() -> tuple[list[BaseException], int]:
        collection: Any = mongomock.MongoClient()["db"]["docs"]
        collection.insert_many([{"_id": i} for i in range(300)])
        start, errors, counts = threading.Barrier(6), [], []

        def delete() -> None:
            start.wait()
            try:
                counts.append(collection.delete_many({"_id": {"$in": list(range(300))}}).deleted_count)
            except KeyError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=delete) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        return errors, sum(counts)

    with atomic_writes():
        for _ in range(10):
            assert race() == ([], 300), "every document deleted and counted exactly once"
