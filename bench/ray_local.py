"""Ray local, for `bench.suite`: run by the Python of a separate virtualenv that has
Ray (see `bench/peers.py`), never imported by Cloudpipe. Prints one JSON line:
{"latency": [seconds per ray.get(f.remote())...], "throughput": tasks per second}."""

from __future__ import annotations

import argparse
import json
import os
import time

import ray


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
    began = time.perf_counter()
    results = ray.get([inc.remote(i) for i in range(args.tasks)])
    throughput = args.tasks / (time.perf_counter() - began)
    assert results[-1] == args.tasks
    ray.shutdown()
    print(json.dumps({"latency": latency, "throughput": throughput}))


if __name__ == "__main__":
    main()
