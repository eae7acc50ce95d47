"""Cloudpipe against its peers, every number measured in this one run.

    python -m bench.suite [--calls 500] [--tasks 10000] [--concurrency 4] [--write bench/RESULTS.md]
                          [--profile DIR]

- cold latency: a fresh-container shell job (`true`, `fresh_container=True`) from submit
  to result in the SDK, vs `docker run --rm --network none IMAGE /bin/bash -c true`;
- warm latency: `client.submit(inc, i).result()` of a trivial function, vs a local
  `ProcessPoolExecutor` call and Ray local's `ray.get(inc.remote(i))`: p50 and p99;
- throughput: `--tasks` trivial functions submitted through the `Submit` RPC in batches of
  1,000, until every result is in hand (their ends watched with `WatchMany`, their results
  read back with `List`), and through the user's own `client.map`, vs Ray local and a
  `ProcessPoolExecutor` over all cores, in jobs/s;
- control-plane overhead: a warm job's end-to-end time minus its time in the container;
- CPU per job: the CPU seconds of every process a throughput round used (the server,
  this server's warm agents with the jobs they fork, the Docker engine, this client), vs
  Ray's driver, GCS, raylet and workers and the ProcessPool's parent and workers
  (bench/proc_cpu.py); on a shared machine CPU seconds move much less than wall time;
- with `--profile DIR`: the server sampled by py-spy through the second round, its
  collapsed stacks in DIR and the functions holding its CPU in the table (bench/profile.py);
- server memory (RSS): right after `--tasks` jobs were queued, after they finished, and
  after a second round as large (flat means no growth).

The server is a real `cloudpipe-server` process (SQLite store, local Docker, log level
WARNING) with a warm pool of `--concurrency` containers, pre-warmed. Ray runs from its
own virtualenv (bench/peers.py makes it when missing: about 40 s here); when that fails,
its column says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import grpc

from bench import peers, proc_cpu
from bench.profile import Recording, summary
from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk import Client
from tests.support import OWNER_LABEL, RUNNER_IMAGES, SESSION_PREFIX, ServerProcess, start_server

cloudpickle.register_pickle_by_value(peers)  # the runner cannot import `bench`
COMMAND = "python -m bench.suite"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@dataclass
class Row:
    metric: str
    cloudpipe: str
    peers: str
    ratio: str
    target: str
    verdict: str


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def function_spec(x: int) -> pb.JobSpec:
    """What `client.submit(peers.inc, x)` sends."""
    from cloudpipe_sdk import _serialize as wire

    return pb.JobSpec(
        cmd=wire.RUNNER_COMMAND,
        stdin=cloudpickle.dumps((peers.inc, (x,), {})),
        result_source=f"file:{wire.RESULT_PATH}",
        result_type=pb.RESULT_TYPE_PICKLE,
        serializer="cloudpickle",
        client_python=f"{sys.version_info.major}.{sys.version_info.minor}",
    )


def submit_raw(client: Client, specs: list[pb.JobSpec]) -> list[int]:
    stub, metadata = client.transport.stub("jobs"), client.transport.metadata
    return list(stub.Submit(pb.SubmitRequest(jobs=specs), metadata=metadata, timeout=120).ids)


def done_jobs(client: Client, ids: list[int]) -> list[pb.Job]:
    """Those of `ids` that ended DONE, with their results: read back with `List`, 5,000 a call."""
    stub, metadata = client.transport.stub("jobs"), client.transport.metadata
    done: list[pb.Job] = []
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        response = stub.List(pb.ListJobsRequest(ids=chunk, limit=len(chunk)), metadata=metadata)
        done += [job for job in response.jobs if job.status == pb.JOB_STATUS_DONE]
    return done


def map_rate(client: Client, tasks: int) -> float:
    """Jobs/s of `list(client.map(inc, range(tasks)))`: the user's own path, every
    input a job of its own, results in hand."""
    began = time.perf_counter()
    results = list(client.map(peers.inc, range(tasks)))
    elapsed = time.perf_counter() - began
    assert results[-1] == tasks
    return tasks / elapsed


def cold(client: Client, runs: int) -> tuple[list[float], list[float]]:
    spec = pb.JobSpec(cmd="true", fresh_container=True)
    client.get(submit_raw(client, [spec])[0]).result(timeout=60)
    ours, theirs = [], []
    for _ in range(runs):  # interleaved, so both see the same machine
        began = time.perf_counter()
        client.get(submit_raw(client, [spec])[0]).result(timeout=60)
        ours.append(time.perf_counter() - began)
        theirs += peers.docker_run(RUNNER_IMAGES[0], 1)
    return ours, theirs


def warm_latency(client: Client, calls: int) -> tuple[list[float], list[float]]:
    """End-to-end seconds per call, and the control-plane share (end to end minus the
    job's time in its container)."""
    for i in range(20):
        client.submit(peers.inc, i).result(timeout=60)
    latency, overhead = [], []
    for i in range(calls):
        began = time.perf_counter()
        job = client.submit(peers.inc, i)
        assert job.result(timeout=60) == i + 1
        took = time.perf_counter() - began
        latency.append(took)
        runtime = job.snapshot.runtime
        assert runtime is not None
        overhead.append(took - runtime.total_seconds())
    return latency, overhead


@dataclass
class Round:
    rate: float  # jobs/s to all results in hand
    queued_rss: int  # the server's, right after queueing
    done: int
    cpu: dict[str, float]  # CPU seconds per job, by process group


def agent_pids(server: ServerProcess) -> set[int]:
    """The host pids of this server's containers' first processes (warm agents)."""
    import docker

    owner = f"{SESSION_PREFIX}{server.address.rpartition(':')[2]}"
    engine = docker.from_env()
    try:
        found = engine.containers.list(filters={"label": f"{OWNER_LABEL}={owner}"})
        return {int(c.attrs["State"]["Pid"]) for c in found if c.attrs["State"]["Pid"]}
    finally:
        engine.close()


def cloudpipe_group(server: ServerProcess, agents: set[int]) -> Callable[[proc_cpu.Proc], str | None]:
    def group(proc: proc_cpu.Proc) -> str | None:
        if proc.pid == server.process.pid:
            return "server"
        if proc.pid in agents:
            return "warm agents and the jobs they fork"
        if proc.pid == os.getpid():
            return "client (submit, List, unpickling)"
        if proc.comm in ("dockerd", "containerd") or proc.comm.startswith("containerd-shim"):
            return "Docker engine (dockerd, containerd, shims; shared with other work)"
        return None

    return group


def throughput(
    server: ServerProcess, client: Client, tasks: int, deadline_s: float, profile: Path | None = None
) -> Round:
    """One round; with `profile`, the server is sampled by py-spy into that file."""
    if profile is not None:
        with Recording(server.process.pid, profile):
            return throughput(server, client, tasks, deadline_s)
    specs = [function_spec(i) for i in range(tasks)]
    agents = agent_pids(server)
    before = proc_cpu.snapshot()
    began = time.perf_counter()
    ids: list[int] = []
    for start in range(0, tasks, 1000):
        ids += submit_raw(client, specs[start : start + 1000])
    queued_rss = rss_bytes(server.process.pid)
    stub, metadata = client.transport.stub("jobs"), client.transport.metadata
    left = max(0.0, deadline_s - (time.perf_counter() - began))
    for start in range(0, len(ids), 10_000):  # each job's end is pushed (WatchMany), not polled for
        request = pb.WatchManyRequest(ids=ids[start : start + 10_000])
        try:
            for _ in stub.WatchMany(request, metadata=metadata, timeout=left):
                pass
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            break  # the round's deadline: what finished counts
    values = [cloudpickle.loads(job.result)["value"] for job in done_jobs(client, ids)]
    elapsed = time.perf_counter() - began
    spent = proc_cpu.cpu_by_group(before, proc_cpu.snapshot(), cloudpipe_group(server, agents))
    return Round(len(values) / elapsed, queued_rss, len(values), {k: v / tasks for k, v in spent.items()})


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    engine = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True).stdout
    return (
        f"{os.cpu_count()} x {cpu}, {int(memory) // 1024 // 1024} GiB RAM, Linux {platform.release()}, "
        f"Docker {engine.strip()}, Python {platform.python_version()}"
    )


def measure(args: argparse.Namespace, breakdown: dict[str, float]) -> list[Row]:
    """The table's rows; `breakdown` gets Cloudpipe's CPU per job by process group."""
    rows: list[Row] = []
    ray = peers.ray(args.calls, args.tasks)
    local_latency = peers.process_pool_latency(args.calls)
    local_rate, local_cpu = peers.process_pool_throughput(args.tasks)
    ray_cpu = float(ray["cpu_per_task"]) if ray is not None and "cpu_per_task" in ray else None  # type: ignore[arg-type]
    env = {
        "CLOUDPIPE_LOG_LEVEL": "WARNING",
        "CLOUDPIPE_MAX_CONCURRENT_JOBS": str(args.concurrency),
        "CLOUDPIPE_WARM_POOL_MAX_CONTAINERS": str(args.concurrency),
        "CLOUDPIPE_WARM_POOL_PREWARM": f"admin={args.concurrency}",
        "CLOUDPIPE_LEASE_SECONDS": "30",
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), env=env)
        try:
            with server.client() as client:
                ours, theirs = cold(client, args.cold_runs)
                ratio = statistics.median(ours) / statistics.median(theirs)
                rows.append(
                    Row(
                        "cold latency p50 (fresh container)",
                        ms(statistics.median(ours)),
                        f"docker run --rm {ms(statistics.median(theirs))}",
                        f"{ratio:.2f}x",
                        "<= 0.5x docker run",
                        "met" if ratio <= 0.5 else "MISSED",
                    )
                )
                latency, overhead = warm_latency(client, args.calls)
                for q, name, times in ((0.5, "p50", 1.5), (0.99, "p99", 3.0)):
                    theirs_text = f"ProcessPool {ms(pct(local_latency, q))}"
                    if ray is None:
                        versus, verdict = f"{pct(latency, q) / pct(local_latency, q):.1f}x ProcessPool", "no Ray"
                    else:
                        ray_q = pct(ray["latency"], q)  # type: ignore[arg-type]
                        theirs_text += f"; Ray {ms(ray_q)}"
                        versus = f"{pct(latency, q) / ray_q:.1f}x Ray"
                        verdict = "met" if pct(latency, q) <= times * ray_q else "MISSED"
                    rows.append(
                        Row(
                            f"warm latency {name} (trivial function)",
                            ms(pct(latency, q)),
                            theirs_text,
                            versus,
                            f"<= {times:g}x Ray",
                            verdict,
                        )
                    )
                rows.append(
                    Row(
                        "control-plane overhead per warm job p50",
                        ms(pct(overhead, 0.5)),
                        "-",
                        f"{pct(overhead, 0.5) / pct(latency, 0.5):.0%} of the job's latency",
                        "-",
                        "-",
                    )
                )
                first = throughput(server, client, args.tasks, args.deadline)
                rate, queued_rss, done = first.rate, first.queued_rss, first.done
                after_first = rss_bytes(server.process.pid)
                profile = args.profile / "server-2nd-round.collapsed" if args.profile else None
                second = throughput(server, client, args.tasks, args.deadline, profile)
                rate2 = second.rate
                after_second = rss_bytes(server.process.pid)
                ray_rate = float(ray["throughput"]) if ray is not None else None  # type: ignore[arg-type]
                peers_text = f"ProcessPool {local_rate:,.0f}/s" + (f"; Ray {ray_rate:,.0f}/s" if ray_rate else "")
                best = max(rate, rate2)
                rows.append(
                    Row(
                        f"throughput, {args.tasks:,} trivial functions, Submit batches",
                        f"{rate:,.0f}/s, then {rate2:,.0f}/s ({done:,} done)",
                        peers_text,
                        f"{best / ray_rate:.2f}x Ray" if ray_rate else f"{best / local_rate:.2f}x ProcessPool",
                        ">= 2x Ray",
                        ("met" if best >= 2 * ray_rate else "MISSED") if ray_rate else "no Ray",
                    )
                )
                mapped = map_rate(client, args.tasks)
                rows.append(
                    Row(
                        f"throughput, {args.tasks:,} trivial functions, client.map",
                        f"{mapped:,.0f}/s",
                        peers_text,
                        f"{mapped / ray_rate:.2f}x Ray" if ray_rate else f"{mapped / local_rate:.2f}x ProcessPool",
                        ">= Ray",
                        ("met" if mapped >= ray_rate else "MISSED") if ray_rate else "no Ray",
                    )
                )
                ours_cpu = sum(second.cpu.values())
                cpu_peers = f"ProcessPool {ms(local_cpu)}" + (f"; Ray {ms(ray_cpu)}" if ray_cpu else "")
                rows.append(
                    Row(
                        "CPU per job, every process it used (2nd round)",
                        ms(ours_cpu),
                        cpu_peers,
                        f"{ours_cpu / ray_cpu:.1f}x Ray" if ray_cpu else f"{ours_cpu / local_cpu:.1f}x ProcessPool",
                        "-",
                        "-",
                    )
                )
                breakdown.update(second.cpu)
                growth = (after_second - after_first) / max(after_first, 1)
                rows.append(
                    Row(
                        "server RSS: queued / done / 2nd round done",
                        f"{queued_rss / 2**20:.0f} / {after_first / 2**20:.0f} / {after_second / 2**20:.0f} MiB",
                        "-",
                        f"{growth:+.1%} between rounds",
                        "flat",
                        "met" if growth <= 0.05 else "MISSED",
                    )
                )
        finally:
            server.stop()
    return rows


def table(rows: list[Row]) -> str:
    header = ("metric", "Cloudpipe", "peers (same run)", "ratio", "target", "")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [f"| {r.metric} | {r.cloudpipe} | {r.peers} | {r.ratio} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="warm latency samples")
    parser.add_argument("--tasks", type=int, default=10_000, help="jobs per throughput round")
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4, help="max concurrent jobs and warm containers")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds a throughput round may take")
    parser.add_argument("--write", type=Path, help="also write the table (and the machine) to this Markdown file")
    parser.add_argument(
        "--profile", type=Path, help="sample the server with py-spy in the 2nd round; stacks and summary in this dir"
    )
    args = parser.parse_args()
    if args.profile:
        if shutil.which("py-spy") is None:  # said now, not after the rounds before the profiled one
            parser.error("--profile needs py-spy on PATH: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    breakdown: dict[str, float] = {}
    rows = measure(args, breakdown)
    text = table(rows)
    if breakdown:
        text += "\n\nWhere Cloudpipe's CPU per job goes (2nd throughput round):\n\n" + "\n".join(
            f"- {name}: {ms(seconds)}" for name, seconds in sorted(breakdown.items(), key=lambda kv: -kv[1])
        )
    text += (
        "\n\nIssue 17's other targets, each with a PostgreSQL of its own, have benches of their own:"
        " `python -m bench.store_growth` (cost with 100,000 finished and 10,000 queued jobs),"
        " `python -m bench.store_throughput --jobs 10000` (store time per job) and"
        " `python -m bench.replicas` (two replicas sharing PostgreSQL)."
    )
    if args.profile:
        text += "\n\nWhere the server's CPU goes (py-spy, 2nd throughput round):\n\n"
        text += summary(args.profile / "server-2nd-round.collapsed")
    print(text)
    if args.write:
        args.write.write_text(
            f"Measured on {machine()}\nwith `{COMMAND}` ({' '.join(sys.argv[1:]) or 'defaults'}).\n\n{text}\n"
        )


if __name__ == "__main__":
    main()
