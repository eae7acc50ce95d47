"""Ray local, for `bench.suite`: run by the Python of a separate virtualenv that has
Ray (see `bench/peers.py`), never imported by Cloudpipe. Prints one JSON line:
{"latency": [seconds per ray.get(f.remote())...], "throughput": tasks per second,
"cpu_per_task": CPU seconds per task of the throughput phase, over this driver and
every process under it: Ray's GCS, raylet and workers}."""

from __future__ import annotations

import argparse
import json
import os
import time

import ray
from proc_cpu import cpu_by_group, descendants, snapshot  # beside this script


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)

    @ray.remote
    def inc(x: int) -> int:
        return x + 1

    ray.get([inc.remote(i) for i in range(50)])  # workers up
    latency = []
    for i in range(args.calls):
        began = time.perf_counter()
        ray.get(inc.remote(i))
        latency.append(time.perf_counter() - began)
    before = snapshot()
    began = time.perf_counter()
    results = ray.get([inc.remote(i) for i in range(args.tasks)])
    throughput = args.tasks / (time.perf_counter() - began)
    after = snapshot()
    assert results[-1] == args.tasks
    ours = descendants(after, os.getpid())
    spent = cpu_by_group(before, after, lambda proc: "ray" if proc.pid in ours else None)
    ray.shutdown()
    cpu_per_task = spent.get("ray", 0.0) / args.tasks
    print(json.dumps({"latency": latency, "throughput": throughput, "cpu_per_task": cpu_per_task}))


if __name__ == "__main__":
    main()
