"""Live output latency: from a byte written by a job's process to it arriving in the
SDK (`job.stream()`), against `docker logs -f` of a container doing the same, measured
in the same run.

    python -m bench.stream_latency [--lines 200]

Both containers print one line every 20 ms holding `time.time_ns()` at the moment of
writing (same host clock: containers share the kernel's clock); the reader subtracts
that from the arrival time. Prints p50/p99 for each path and their ratio
(target: Cloudpipe p50 <= 10 ms).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import docker

from cloudpipe_sdk import Output
from tests.support import RUNNER_IMAGES, start_server

TARGET_P50_MS = 10.0
SCRIPT = (
    "import sys, time\n"
    "for i in range({lines}):\n"
    "    sys.stdout.write('%d\\n' % time.time_ns()); sys.stdout.flush(); time.sleep(0.02)\n"
)


def _latencies(lines: list[tuple[int, bytes]]) -> list[float]:
    """(arrival ns, text) pairs -> latencies in ms, one per complete line."""
    out: list[float] = []
    buffer = b""
    for arrived, data in lines:
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        out.extend((arrived - int(line)) / 1e6 for line in complete if line.strip())
    return out


def cloudpipe(lines: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), env={"CLOUDPIPE_LOG_LEVEL": "WARNING"})
        try:
            with server.client() as client:
                job = client.shell("python3 -", stdin=SCRIPT.format(lines=lines).encode())
                arrivals = [(time.time_ns(), event.data) for event in job.stream() if isinstance(event, Output)]
                job.result(timeout=60)
        finally:
            server.stop()
    return _latencies(arrivals)


def docker_logs(lines: int) -> list[float]:
    engine = docker.from_env()
    container = engine.containers.run(
        RUNNER_IMAGES[0], ["python3", "-c", SCRIPT.format(lines=lines)], detach=True, network_disabled=True
    )
    arrivals: list[tuple[int, bytes]] = []
    try:
        reader = threading.Thread(
            target=lambda: arrivals.extend(
                (time.time_ns(), chunk) for chunk in container.logs(stream=True, follow=True, stdout=True)
            )
        )
        reader.start()
        reader.join(120)
    finally:
        container.remove(force=True)
        engine.close()
    return _latencies(arrivals)


def _summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    ours = _summary(cloudpipe(args.lines))
    theirs = _summary(docker_logs(args.lines))
    print(f"{'path':<22}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'cloudpipe job.stream()':<22}{ours[0]:>10.2f}{ours[1]:>10.2f}")
    print(f"{'docker logs -f':<22}{theirs[0]:>10.2f}{theirs[1]:>10.2f}")
    print(f"ratio p50 {ours[0] / theirs[0]:.2f}x, p99 {ours[1] / theirs[1]:.2f}x")
    verdict = "met" if ours[0] <= TARGET_P50_MS else "NOT met"
    print(f"target p50 <= {TARGET_P50_MS:g} ms: {verdict} ({ours[0]:.2f} ms)")


if __name__ == "__main__":
    main()
