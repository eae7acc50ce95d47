"""What a job's large values cost the calls that do not need them: a lease extension
and a List summary of a job holding a big stdin, and a List summary once it finished
with a big stdout and result, each timed against the same call on a job without them,
in the same run.

    python -m bench.store_blobs [--mb 50] [--rounds 20] [--store sqlite|postgres]

The ratio is big job / small job for each call's median; 1.0 means the values cost
those calls nothing. SQLite keeps them out of the job's row (store/sqlite/blobs.py);
before, with them in the row, a 50 MiB stdin made each lease extension 1,382x slower.
PostgreSQL is a real throwaway cluster (tests/contract/postgres_cluster.py), whose
TOAST keeps large values out of line by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from cloudpipe_server.models import JobQuery, JobSpec, JobStatus, Outcome
from cloudpipe_server.store import open_stores
from cloudpipe_server.store.base import JobStore

ACCOUNT, OWNER = "bench", "blobs"
LEASE = timedelta(seconds=600)


async def median_ms(call: Callable[[], Awaitable[object]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def measure(store: JobStore, size: int, rounds: int) -> dict[str, float]:
    """Each call's median (ms) for a job with `size`-byte values."""
    now = datetime.now(UTC)
    [job_id] = await store.submit(ACCOUNT, [JobSpec(cmd="cat", stdin=b"i" * size)], now)
    [claimed] = await store.claim(OWNER, now, LEASE, 1)
    assert claimed.id == job_id
    until = now + 2 * LEASE
    times = {
        "extend_leases (running)": await median_ms(lambda: store.extend_leases(OWNER, [job_id], until), rounds),
        "List summary (running)": await median_ms(
            lambda: store.list_jobs(ACCOUNT, JobQuery(ids=(job_id,), with_output=False)), rounds
        ),
    }
    outcome = Outcome(JobStatus.DONE, now, return_code=0, stdout=b"o" * size, result=b"r" * size)
    assert await store.finish(job_id, OWNER, outcome)
    times["List summary (finished)"] = await median_ms(
        lambda: store.list_jobs(ACCOUNT, JobQuery(ids=(job_id,), with_output=False)), rounds
    )
    return times


async def run(url: str, size: int, rounds: int) -> None:
    stores = open_stores(url)
    await stores.jobs.initialize()
    try:
        small = await measure(stores.jobs, 0, rounds)
        big = await measure(stores.jobs, size, rounds)
    finally:
        await stores.jobs.close()
    print(f"{'call':<26} {'no values':>10} {size >> 20:>5} MB each {'ratio':>7}")
    for name, base in small.items():
        print(f"{name:<26} {base:>8.2f} ms {big[name]:>10.2f} ms {big[name] / base:>6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the stdin, stdout and result (MiB)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.store == "postgres":
            from tests.contract.postgres_cluster import benchmark_server, database_url, fresh_database

            url = database_url(stack.enter_context(fresh_database(benchmark_server(stack), "cloudpipe_blobs")))
        else:
            url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/bench.db"
        asyncio.run(run(url, args.mb << 20, args.rounds))


if __name__ == "__main__":
    main()
