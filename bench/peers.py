"""The baselines of `bench.suite`, each measured in the same run as Cloudpipe:
`docker run --rm`, a local `ProcessPoolExecutor`, and Ray local (in its own virtualenv,
so Ray is never a dependency of Cloudpipe)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import proc_cpu

RAY_VENV = Path.home() / ".venvs" / "cloudpipe-bench-ray"
RAY_SETUP = f"python3 -m venv {RAY_VENV} && {RAY_VENV}/bin/pip install ray cloudpickle==3.1.1"


def inc(x: int) -> int:
    """The trivial function every path runs."""
    return x + 1


def docker_run(image: str, runs: int) -> list[float]:
    """Seconds per `docker run --rm --network none IMAGE /bin/bash -c true`."""
    cmd = ["docker", "run", "--rm", "--network", "none", image, "/bin/bash", "-c", "true"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the engine's caches, like the first job does
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return times


def process_pool_latency(calls: int) -> list[float]:
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        pool.submit(inc, 0).result()
        times = []
        for i in range(calls):
            began = time.perf_counter()
            pool.submit(inc, i).result()
            times.append(time.perf_counter() - began)
    return times


def process_pool_throughput(tasks: int) -> tuple[float, float]:
    """(jobs per second, CPU seconds per job of this process and its workers) of `tasks`
    calls over as many workers as cores."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(inc, range(os.cpu_count() or 1)))  # workers started
        before = proc_cpu.snapshot()
        began = time.perf_counter()
        results = list(pool.map(inc, range(tasks)))
        elapsed = time.perf_counter() - began
        after = proc_cpu.snapshot()
    assert results[-1] == tasks
    ours = proc_cpu.descendants(after, os.getpid())
    spent = proc_cpu.cpu_by_group(before, after, lambda proc: "pool" if proc.pid in ours else None)
    return tasks / elapsed, spent.get("pool", 0.0) / tasks


def ray_python() -> str | None:
    """The Python that has Ray: $CLOUDPIPE_BENCH_RAY_PYTHON, else the bench's own
    virtualenv, which is made (once; it prints how long that took) when it is missing.
    None when that fails."""
    configured = os.environ.get("CLOUDPIPE_BENCH_RAY_PYTHON")
    if configured:
        return configured if Path(configured).exists() else None
    candidate = RAY_VENV / "bin" / "python"
    if not candidate.exists():
        print(f"installing Ray for the peer column, once: {RAY_SETUP}", file=sys.stderr)
        began = time.perf_counter()
        made = subprocess.run(RAY_SETUP, shell=True, capture_output=True, text=True, check=False)
        if made.returncode != 0:
            print(f"installing Ray failed:\n{made.stderr[-2000:]}", file=sys.stderr)
            shutil.rmtree(RAY_VENV, ignore_errors=True)  # no half-made venv next time
            return None
        print(f"Ray installed in {time.perf_counter() - began:.0f} s ({RAY_VENV})", file=sys.stderr)
    return str(candidate)


def ray(calls: int, tasks: int) -> dict[str, object] | None:
    """{"latency": [seconds...], "throughput": jobs/s} from `bench/ray_local.py` run by
    the Ray virtualenv's Python, or None when Ray is not installed."""
    python = ray_python()
    if python is None:
        print("Ray is not available; skipping its column", file=sys.stderr)
        return None
    script = Path(__file__).with_name("ray_local.py")
    done = subprocess.run(
        [python, str(script), "--calls", str(calls), "--tasks", str(tasks)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        print(f"Ray run failed; skipping its column:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
