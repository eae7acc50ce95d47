"""HTTP gateway overhead: `GET /v1/job?jid=N` and `POST /v1/job` through the gateway
against the equivalent direct gRPC call (List / Submit), in the same run.

    python -m bench.gateway_overhead [--requests 500]

A real server and a real gateway process on loopback ports; the client side is one
keep-alive `http.client` connection and one synchronous gRPC channel, called one request
at a time, alternating in blocks so that drift hits both paths alike. The server runs one
job at a time and the first job sleeps, so every submitted job stays queued (no container
per request); everything is killed at the end. Needs Docker for that one sleeping job.

Prints requests/s, p50 and p99 per path and the time the gateway adds per request at p50
(target: <= 1 ms).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.support import ROOT, free_port, start_server

TARGET_MS = 1.0
BLOCK = 50
JOB = {"cmd": "true", "name": "bench", "result_source": "stdout", "result_type": "binary", "tags": {"k": "v"}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def compare(name: str, via_gateway: Callable[[], object], direct: Callable[[], object], requests: int) -> bool:
    timed(via_gateway, BLOCK)  # warm-up: connections, caches
    timed(direct, BLOCK)
    gateway_ms: list[float] = []
    direct_ms: list[float] = []
    while len(gateway_ms) < requests:
        n = min(BLOCK, requests - len(gateway_ms))
        gateway_ms += timed(via_gateway, n)
        direct_ms += timed(direct, n)
    added = statistics.median(gateway_ms) - statistics.median(direct_ms)
    for label, samples in (("gateway", gateway_ms), ("direct gRPC", direct_ms)):
        rate = 1000 * len(samples) / sum(samples)
        print(
            f"  {name:<22} {label:<12} {rate:8.0f} req/s   p50 {statistics.median(samples):6.3f} ms"
            f"   p99 {percentile(samples, 0.99):6.3f} ms"
        )
    ratio = statistics.median(gateway_ms) / statistics.median(direct_ms)
    ok = added <= TARGET_MS
    print(f"  {name:<22} added at p50: {added:.3f} ms/request ({ratio:.2f}x direct)  {'ok' if ok else 'OVER TARGET'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests per path and endpoint")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cloudpipe-bench-") as tmp:
        server = start_server(Path(tmp), env={"CLOUDPIPE_MAX_CONCURRENT_JOBS": "1", "CLOUDPIPE_LOG_LEVEL": "WARNING"})
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "http_gateway", "--listen", f"127.0.0.1:{port}", "--server", server.address],
            cwd=ROOT,
            env={**os.environ, "CLOUDPIPE_GATEWAY_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        auth = "Basic " + base64.b64encode(f"admin:{server.api_key}".encode()).decode()
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        metadata = (("authorization", f"Bearer {server.api_key}"), ("x-cloudpipe-account", "admin"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            wait_for_gateway(connection, headers)

            def http_call(method: str, path: str, body: bytes | None = None) -> bytes:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{method} {path}: {response.status} {data!r}")
                return data

            blocker = {**JOB, "cmd": "sleep 600", "name": "blocker"}
            http_call("POST", "/v1/job", json.dumps({"jobs": [blocker]}).encode())
            body = json.dumps({"jobs": [JOB]}).encode()
            (jid,) = json.loads(http_call("POST", "/v1/job", body))["jids"]
            spec = pb.JobSpec(
                cmd="true", name="bench", image="cloudpipe/runner-py2:latest", tags={"k": "v"}, result_source="stdout"
            )
            get_request = pb.ListJobsRequest(ids=[jid], limit=1)
            submit_request = pb.SubmitRequest(jobs=[spec])

            print(f"gateway overhead, {args.requests} requests per path (target: <= {TARGET_MS} ms added at p50)")
            ok = compare(
                f"GET /v1/job?jid={jid}",
                lambda: http_call("GET", f"/v1/job?jid={jid}&limit=1"),
                lambda: stub.List(get_request, metadata=metadata, timeout=10),
                args.requests,
            )
            ok &= compare(
                "POST /v1/job",
                lambda: http_call("POST", "/v1/job", body),
                lambda: stub.Submit(submit_request, metadata=metadata, timeout=10),
                args.requests,
            )
            http_call("POST", "/v1/job/kill_all")
        finally:
            connection.close()
            channel.close()
            gateway.terminate()
            gateway.wait(20)
            server.stop()
    return 0 if ok else 1


def wait_for_gateway(connection: http.client.HTTPConnection, headers: dict[str, str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.request("GET", "/v1/auth_service", headers=headers)
            connection.getresponse().read()
            return
        except OSError:
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
