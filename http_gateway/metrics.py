"""The gateway's Prometheus metrics, served at `GET /metrics` (text exposition format).

Every metric lives in the registry handed to `GatewayMetrics` (one per app; no global
default registry), and carries no account name or key: labels are the route, the
method, the status code and the gRPC method, all from small fixed sets.

    cloudpipe_gateway_http_requests_total{route,method,code}   requests answered
    cloudpipe_gateway_http_request_seconds{route}              time to the response start
    cloudpipe_gateway_grpc_calls_total{method,code}            unary gRPC calls made
    cloudpipe_gateway_grpc_call_seconds{method}                their latency
    cloudpipe_gateway_auth_failures_total                      401 answers
    cloudpipe_gateway_live_feeds                               open UI live feeds (SSE)
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """The gateway's metrics in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_requests = Counter(
            "cloudpipe_gateway_http_requests",
            "HTTP requests answered, by route, method and status code",
            ("route", "method", "code"),
            registry=registry,
        )
        self.http_seconds = Histogram(
            "cloudpipe_gateway_http_request_seconds",
            "Time from a request to the start of its response, by route",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.grpc_calls = Counter(
            "cloudpipe_gateway_grpc_calls",
            "Unary gRPC calls to the server, by method and status code",
            ("method", "code"),
            registry=registry,
        )
        self.grpc_seconds = Histogram(
            "cloudpipe_gateway_grpc_call_seconds",
            "Latency of unary gRPC calls to the server, by method",
            ("method",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.auth_failures = Counter(
            "cloudpipe_gateway_auth_failures", "Requests answered 401 (no or refused credentials)", registry=registry
        )
        self.live_feeds = Gauge(
            "cloudpipe_gateway_live_feeds", "Open live feeds of the web UI (SSE)", registry=registry
        )

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        self.grpc_calls.labels(method, code).inc()
        self.grpc_seconds.labels(method).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request of `app`. `routes` are the paths reported as
    themselves; every other path is reported as `/ui/*` (static files) or `other`, so
    a scanner's random paths cannot grow the label set."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, routes: Iterable[str]) -> None:
        self._app = app
        self._metrics = metrics
        self._routes = frozenset(routes)

    def _route(self, path: str) -> str:
        if path in self._routes:
            return path
        return "/ui/*" if path.startswith("/ui/") else "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        route = self._route(scope["path"])
        started = time.perf_counter()

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                code = int(message["status"])
                self._metrics.http_seconds.labels(route).observe(time.perf_counter() - started)
                self._metrics.http_requests.labels(route, scope["method"], str(code)).inc()
                if code == 401:
                    self._metrics.auth_failures.inc()
            await send(message)

        await self._app(scope, receive, counted)
