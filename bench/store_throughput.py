"""Job store throughput: jobs/s through submit -> claim -> finish for each backend, as
ratios to SQLite measured in the same run, and claim latency under 8 competing dispatchers.

    python -m bench.store_throughput [--jobs 2000]

- sequential: one job at a time goes submit([job]) -> claim(limit=1) -> finish: three
  store calls, so "ms/job" is the store's overhead per job (target: <= 0.5 ms on SQLite
  and PostgreSQL).
- contended: `--jobs` jobs are queued first, then 8 dispatchers (asyncio tasks, each with
  a store object of its own) claim one job at a time and finish it until none is left;
  every job must be claimed exactly once. p50/p99 are over all claim calls.

PostgreSQL is a real throwaway cluster (tests/contract/postgres_cluster.py) with the
server's default durability: every commit waits for its WAL flush. A second row turns
`synchronous_commit` off for the store's sessions, which is closer to SQLite's WAL mode
with synchronous=NORMAL (the last commits can be lost, never corrupted). MongoDB can only
be measured on a real server (CLOUDPIPE_TEST_MONGO_URI); without one the row is
mongomock, a double whose numbers say nothing about MongoDB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudpipe_server.models import JobSpec, JobStatus, Outcome
from cloudpipe_server.store.base import JobStore

LEASE = timedelta(seconds=60)
DISPATCHERS = 8
TARGET_MS = 0.5


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[[], JobStore]  # a new store object on this backend's (shared) database
    targeted: bool = False  # held to the per-job target
    max_jobs: int | None = None  # a cap for a backend too slow for the full count


@dataclass(frozen=True)
class Result:
    backend: Backend
    jobs: int
    sequential_s: float
    contended_s: float
    claim_ms: list[float]


def now() -> datetime:
    return datetime.now(UTC)


async def sequential(backend: Backend, jobs: int) -> float:
    store = backend.open()
    await store.initialize()
    try:
        start = time.perf_counter()
        for i in range(jobs):
            await store.submit("bench", [JobSpec(cmd=f"echo {i}")], now())
            [job] = await store.claim("d0", now(), LEASE, 1)
            assert await store.finish(job.id, "d0", Outcome(JobStatus.DONE, now(), return_code=0, stdout=b"x\n"))
        return time.perf_counter() - start
    finally:
        await store.close()


async def contended(backend: Backend, jobs: int) -> tuple[float, list[float]]:
    stores = [backend.open() for _ in range(DISPATCHERS)]
    for store in stores:
        await store.initialize()
    try:
        ids: list[int] = []
        for first in range(0, jobs, 100):
            batch = [JobSpec(cmd=f"echo {i}") for i in range(first, min(first + 100, jobs))]
            ids += await stores[0].submit("bench", batch, now())
        latencies: list[float] = []

        async def dispatcher(store: JobStore, owner: str) -> list[int]:
            done: list[int] = []
            while True:
                start = time.perf_counter()
                claimed = await store.claim(owner, now(), LEASE, 1)
                latencies.append((time.perf_counter() - start) * 1000)
                if not claimed:
                    return done
                assert await store.finish(claimed[0].id, owner, Outcome(JobStatus.DONE, now(), return_code=0))
                done.append(claimed[0].id)

        start = time.perf_counter()
        done = await asyncio.gather(*(dispatcher(store, f"d{n}") for n, store in enumerate(stores)))
        elapsed = time.perf_counter() - start
        assert sorted(i for batch in done for i in batch) == ids, "every job claimed exactly once"
        return elapsed, latencies
    finally:
        for store in stores:
            await store.close()


@contextmanager
def backends(root: Path) -> Iterator[list[Backend]]:
    """Every backend that can run here, each on an empty database of its own."""
    from tests.contract.postgres_cluster import benchmark_server, fresh_database

    with ExitStack() as stack:
        from cloudpipe_server.store import sqlite

        found = [Backend("sqlite", lambda: sqlite.open_stores(root / "bench.db").jobs, targeted=True)]

        from psycopg.conninfo import make_conninfo

        from cloudpipe_server.store import postgres

        server = benchmark_server(stack)
        durable = stack.enter_context(fresh_database(server, "cloudpipe_bench"))
        relaxed = make_conninfo(
            stack.enter_context(fresh_database(server, "cloudpipe_bench")), options="-c synchronous_commit=off"
        )
        found.append(Backend("postgres", lambda: postgres.open_stores(durable).jobs, targeted=True))
        relaxed_backend = Backend(
            "postgres, synchronous_commit=off", lambda: postgres.open_stores(relaxed).jobs, targeted=True
        )
        found.append(relaxed_backend)

        from cloudpipe_server.store import mongodb

        mongo_uri = os.environ.get("CLOUDPIPE_TEST_MONGO_URI")
        if mongo_uri:
            import pymongo

            database = f"cloudpipe_bench_{os.getpid()}"
            stack.callback(lambda: pymongo.MongoClient(mongo_uri).drop_database(database))
            found.append(Backend("mongodb", lambda: mongodb.open_stores(mongo_uri, database=database).jobs))
        else:
            import mongomock

            from tests.contract.mongomock_double import atomic_writes

            stack.enter_context(atomic_writes())
            client: Any = mongomock.MongoClient()
            # mongomock scans every document per claim (quadratic): 500 jobs keep this row short.
            double = "mongomock, 500 jobs (a double)"
            on_double = lambda: mongodb.open_stores("", client=client, transactions=False).jobs  # noqa: E731
            found.append(Backend(double, on_double, max_jobs=500))
        yield found


async def measure(backend: Backend, jobs: int) -> Result:
    jobs = min(jobs, backend.max_jobs or jobs)
    sequential_s = await sequential(backend, jobs)
    contended_s, claim_ms = await contended(backend, jobs)
    return Result(backend, jobs, sequential_s, contended_s, claim_ms)


def report(results: list[Result], jobs: int) -> None:
    base = results[0]
    base_seq, base_contended = base.jobs / base.sequential_s, base.jobs / base.contended_s
    header = (
        f"{'backend':<36}{'seq jobs/s':>11}{'ms/job':>8}{'vs sqlite':>10}"
        f"{'8-way jobs/s':>13}{'vs sqlite':>10}{'claim p50 ms':>13}{'p99 ms':>8}"
    )
    print(f"\n{jobs} jobs per phase and backend; {DISPATCHERS} competing dispatchers in the contended phase\n")
    print(header)
    print("-" * len(header))
    for r in results:
        seq_rate, rate = r.jobs / r.sequential_s, r.jobs / r.contended_s
        cuts = statistics.quantiles(r.claim_ms, n=100)
        print(
            f"{r.backend.name:<36}{seq_rate:>11.0f}{r.sequential_s / r.jobs * 1000:>8.3f}"
            f"{seq_rate / base_seq:>9.2f}x{rate:>13.0f}{rate / base_contended:>9.2f}x"
            f"{cuts[49]:>13.3f}{cuts[98]:>8.3f}"
        )
    print(f"\ntarget: store overhead <= {TARGET_MS} ms per job (sequential ms/job) on SQLite and PostgreSQL")
    for r in results:
        if r.backend.targeted:
            per_job = r.sequential_s / r.jobs * 1000
            verdict = "met" if per_job <= TARGET_MS else "NOT met"
            print(f"  {r.backend.name:<36}{per_job:.3f} ms/job: {verdict}")


async def run(jobs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cloudpipe-bench-") as root, backends(Path(root)) as found:
        results = [await measure(backend, jobs) for backend in found]
    report(results, jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per phase and backend (default 2000)")
    asyncio.run(run(parser.parse_args().jobs))


if __name__ == "__main__":
    main()
