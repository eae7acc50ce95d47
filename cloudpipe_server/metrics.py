"""The server's Prometheus metrics, and the small HTTP server that exposes them.

All metrics live in the registry passed to `ServerMetrics` (the composition root makes
one; no global default registry). Labels come from small fixed sets (status, store
operation, gRPC method and code): never an account name, a key or a job id.

`/metrics` is served on its own address, `CLOUDPIPE_METRICS_LISTEN` (empty, the
default: not served). It carries no credentials check, so bind it to loopback or a
private network that only Prometheus reaches (e.g. `127.0.0.1:9464`).

The hooks: `MeteredStore` (store latency, submitted/finished, claim latency, job
duration and overhead; cloudpipe_server/metered_store.py), `MetricsInterceptor` (gRPC
requests and latency; rpc/metrics_interceptor.py), the auth interceptor (failures) and
`QueueDepth` here (jobs per status, read from the store on each scrape interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import JobStatus
from cloudpipe_server.scheduler.models import Fire

log = logging.getLogger(__name__)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_SLOW = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class ServerMetrics:
    """Every server metric, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.jobs_submitted = Counter("cloudpipe_jobs_submitted", "Jobs stored by Submit", registry=registry)
        self.jobs_finished = Counter(
            "cloudpipe_jobs_finished", "Jobs that reached a terminal status, by status", ("status",), registry=registry
        )
        self.queue_depth = Gauge(
            "cloudpipe_queue_depth",
            "Jobs per status (of the accounts this server has served)",
            ("status",),
            registry=registry,
        )
        self.running_jobs = Gauge("cloudpipe_running_jobs", "Jobs this server runs now", registry=registry)
        self.claim_latency = Histogram(
            "cloudpipe_claim_latency_seconds",
            "From submission to claim (time queued)",
            buckets=_SLOW,
            registry=registry,
        )
        self.job_duration = Histogram(
            "cloudpipe_job_duration_seconds", "Container run time of finished jobs", buckets=_SLOW, registry=registry
        )
        self.job_overhead = Histogram(
            "cloudpipe_job_overhead_seconds", "From claim to container start", buckets=_FAST, registry=registry
        )
        self.store_latency = Histogram(
            "cloudpipe_store_operation_seconds",
            "Job store calls, by operation",
            ("operation",),
            buckets=_FAST,
            registry=registry,
        )
        self.store_errors = Counter(
            "cloudpipe_store_errors", "Job store calls that raised, by operation", ("operation",), registry=registry
        )
        self.grpc_requests = Counter(
            "cloudpipe_grpc_requests",
            "gRPC calls handled, by method and status code",
            ("method", "code"),
            registry=registry,
        )
        self.grpc_latency = Histogram(
            "cloudpipe_grpc_request_seconds",
            "gRPC call handling time, by method (streams: their whole life)",
            ("method",),
            buckets=_FAST + _SLOW[5:],
            registry=registry,
        )
        self.warm_pool_acquires = Counter(
            "cloudpipe_warm_pool_acquires",
            "Warm container requests, by result (hit: an idle one reused; miss: started or none)",
            ("result",),
            registry=registry,
        )
        self.warm_pool_size = Gauge(
            "cloudpipe_warm_pool_size", "Warm containers started or starting", registry=registry
        )
        self.scheduler_fires = Counter(
            "cloudpipe_scheduler_fires", "Schedule fires recorded, by outcome", ("outcome",), registry=registry
        )
        self.scheduler_missed = Counter(
            "cloudpipe_scheduler_missed_fires",
            "Fires recorded later than the misfire grace after their due time",
            registry=registry,
        )
        self.scheduler_lag = Histogram(
            "cloudpipe_scheduler_lag_seconds",
            "From a fire's due time to its recording",
            buckets=_FAST + _SLOW[5:],
            registry=registry,
        )
        self.auth_failures = Counter(
            "cloudpipe_auth_failures", "Calls refused by authentication, by reason", ("reason",), registry=registry
        )

    def warm_acquired(self, reused: bool) -> None:
        self.warm_pool_acquires.labels("hit" if reused else "miss").inc()

    def fire_recorded(self, fire: Fire, now: datetime, grace: float) -> None:
        self.scheduler_fires.labels(fire.outcome.value).inc()
        lag = (now - fire.due_at).total_seconds()
        self.scheduler_lag.observe(max(0.0, lag))
        if lag > grace and not fire.manual:
            self.scheduler_missed.inc()


class QueueDepth:
    """Refreshes `cloudpipe_queue_depth` and `cloudpipe_running_jobs` every `interval`
    seconds: the store counts jobs per account only, so the gauge sums the accounts
    this server has stored jobs for since it started (all of them on a single server;
    a global count in the store is the follow-up for replicas)."""

    def __init__(
        self,
        metrics: ServerMetrics,
        counts: Callable[[str], Awaitable[dict[JobStatus, int]]],
        running: Callable[[], int],
        interval: float = 5.0,
    ) -> None:
        self._metrics = metrics
        self._counts = counts
        self._running = running
        self._interval = interval
        self.accounts: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        totals = dict.fromkeys(JobStatus, 0)
        for account in sorted(self.accounts):
            for status, n in (await self._counts(account)).items():
                totals[status] += n
        for status, n in totals.items():
            self._metrics.queue_depth.labels(status.value).set(n)
        self._metrics.running_jobs.set(self._running())

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.warning("metrics: cannot read the queue depth", exc_info=True)
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def serve(registry: CollectorRegistry, listen: str) -> WSGIServer:
    """Serve `registry` at `http://<listen>/metrics` (a daemon thread); `shutdown()` stops it."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgument(f"CLOUDPIPE_METRICS_LISTEN: expected host:port, got {listen!r}")
    server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry)
    log.info("metrics on http://%s/metrics", listen)
    return server
