"""Does a store's cost grow with what it holds? submit, claim, finish and get, timed
on an empty store and again on one holding `--finished` finished jobs and `--queued`
queued ones (issue 17's target: within 1.2x of the empty store), for SQLite and
PostgreSQL, as ratios measured in the same run.

    python -m bench.store_growth [--cycles 1000] [--finished 100000] [--queued 10000]

A cycle is submit([job]) -> claim(limit=1) -> finish -> get, each call timed alone; the
table gives each call's median and p90 in ms, empty and loaded, and the loaded/empty
ratio of the medians. Everything belongs to one account (its counts and limits are read
by the claim), and the loaded store's queue holds `--queued` jobs throughout: each
cycle's claim takes the oldest of them and its submit adds one.

PostgreSQL is a real throwaway cluster (tests/contract/postgres_cluster.py) with the
server's default durability; the loading goes through a second connection with
`synchronous_commit=off` only to be quick, the timed calls through a durable one.
MongoDB has no server here (CLOUDPIPE_TEST_MONGO_URI measures one), and mongomock, a
double, scans every document, so it has no row.
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

from cloudpipe_server.models import JobSpec, JobStatus, Outcome
from cloudpipe_server.store.base import JobStore

ACCOUNT, OWNER = "bench", "growth"
LEASE = timedelta(seconds=600)
TARGET = 1.2
CALLS = ("submit", "claim", "finish", "get")


@dataclass(frozen=True)
class Backend:
    name: str
    timed: Callable[[], JobStore]  # the store whose calls are measured
    loader: Callable[[], JobStore]  # the same database, for filling it quickly


def now() -> datetime:
    return datetime.now(UTC)


async def cycles(store: JobStore, count: int) -> dict[str, list[float]]:
    """`count` cycles; each call's duration in ms."""
    times: dict[str, list[float]] = {call: [] for call in CALLS}

    def timed(call: str, began: float) -> None:
        times[call].append((time.perf_counter() - began) * 1000)

    for i in range(count):
        began = time.perf_counter()
        await store.submit(ACCOUNT, [JobSpec(cmd=f"echo {i}")], now())
        timed("submit", began)
        began = time.perf_counter()
        [job] = await store.claim(OWNER, now(), LEASE, 1)
        timed("claim", began)
        began = time.perf_counter()
        assert await store.finish(job.id, OWNER, Outcome(JobStatus.DONE, now(), return_code=0, stdout=b"x\n"))
        timed("finish", began)
        began = time.perf_counter()
        await store.get(job.id, ACCOUNT)
        timed("get", began)
    return times


async def load(store: JobStore, finished: int, queued: int) -> None:
    """Add `finished` finished jobs, then `queued` queued ones."""
    for first in range(0, finished, 1000):
        size = min(1000, finished - first)
        await store.submit(ACCOUNT, [JobSpec(cmd=f"echo {first + i}") for i in range(size)], now())
        for job in await store.claim(OWNER, now(), LEASE, size):
            assert await store.finish(job.id, OWNER, Outcome(JobStatus.DONE, now(), return_code=0, stdout=b"x\n"))
    for first in range(0, queued, 1000):
        size = min(1000, queued - first)
        await store.submit(ACCOUNT, [JobSpec(cmd=f"echo queued {first + i}") for i in range(size)], now())


async def measure(backend: Backend, count: int, finished: int, queued: int) -> dict[str, tuple[list[float], ...]]:
    store, loader = backend.timed(), backend.loader()
    await store.initialize()
    await loader.initialize()
    try:
        await cycles(store, min(100, count))  # warm caches and connections
        empty = await cycles(store, count)
        began = time.perf_counter()
        await load(loader, finished, queued)
        print(
            f"  {backend.name}: {finished:,} finished and {queued:,} queued jobs added in "
            f"{time.perf_counter() - began:.0f} s",
            flush=True,
        )
        loaded = await cycles(store, count)
        return {call: (empty[call], loaded[call]) for call in CALLS}
    finally:
        await store.close()
        await loader.close()


@contextmanager
def backends(root: Path) -> Iterator[list[Backend]]:
    """SQLite and PostgreSQL (MongoDB when CLOUDPIPE_TEST_MONGO_URI names a server), each
    on an empty database of its own."""
    from psycopg.conninfo import make_conninfo

    from cloudpipe_server.store import mongodb, postgres, sqlite
    from tests.contract.postgres_cluster import benchmark_server, fresh_database

    with ExitStack() as stack:
        path = root / "growth.db"
        found = [Backend("sqlite", lambda: sqlite.open_stores(path).jobs, lambda: sqlite.open_stores(path).jobs)]
        url = stack.enter_context(fresh_database(benchmark_server(stack), "cloudpipe_growth"))
        quick = make_conninfo(url, options="-c synchronous_commit=off")
        found.append(
            Backend("postgres", lambda: postgres.open_stores(url).jobs, lambda: postgres.open_stores(quick).jobs)
        )
        mongo_uri = os.environ.get("CLOUDPIPE_TEST_MONGO_URI")
        if mongo_uri:
            import pymongo

            database = f"cloudpipe_growth_{os.getpid()}"
            stack.callback(lambda: pymongo.MongoClient(mongo_uri).drop_database(database))
            open_mongo = lambda: mongodb.open_stores(mongo_uri, database=database).jobs  # noqa: E731
            found.append(Backend("mongodb", open_mongo, open_mongo))
        yield found


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[8]


def report(results: dict[str, dict[str, tuple[list[float], ...]]], finished: int, queued: int) -> bool:
    """Print the table; whether every call met the target."""
    print(f"\nms per call: empty store, and holding {finished:,} finished + {queued:,} queued jobs\n")
    header = f"{'backend':<10}{'call':<8}{'empty p50':>10}{'p90':>8}{'loaded p50':>11}{'p90':>8}{'ratio':>8}  target"
    print(header)
    print("-" * len(header))
    every = True
    for name, calls in results.items():
        for call, (empty, loaded) in calls.items():
            ratio = statistics.median(loaded) / statistics.median(empty)
            verdict = "met" if ratio <= TARGET else "MISSED"
            every &= ratio <= TARGET
            print(
                f"{name:<10}{call:<8}{statistics.median(empty):>10.3f}{p90(empty):>8.3f}"
                f"{statistics.median(loaded):>11.3f}{p90(loaded):>8.3f}{ratio:>7.2f}x  <= {TARGET}x {verdict}"
            )
    return every


async def run(count: int, finished: int, queued: int) -> bool:
    results: dict[str, dict[str, tuple[list[float], ...]]] = {}
    with tempfile.TemporaryDirectory(prefix="cloudpipe-growth-") as root, backends(Path(root)) as found:
        for backend in found:
            results[backend.name] = await measure(backend, count, finished, queued)
    return report(results, finished, queued)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000, help="timed cycles, empty and loaded (default 1000)")
    parser.add_argument("--finished", type=int, default=100_000, help="finished jobs in the loaded store")
    parser.add_argument("--queued", type=int, default=10_000, help="queued jobs in the loaded store")
    args = parser.parse_args()
    asyncio.run(run(args.cycles, args.finished, args.queued))


if __name__ == "__main__":
    main()
