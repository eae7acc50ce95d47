"""docs/metrics.md: its Grafana dashboard is valid JSON and queries only metrics that
exist, and its tables name every metric the server and the gateway register."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry

from cloudpipe_server.metrics import ServerMetrics
from http_gateway.metrics import GatewayMetrics
from tests.support import ROOT

DOC = (ROOT / "docs" / "metrics.md").read_text()


def _names() -> set[str]:
    names: set[str] = set()
    for build in (ServerMetrics, GatewayMetrics):
        registry = CollectorRegistry()
        build(registry)
        for family in registry.collect():  # labelled metrics have no samples yet: names by type
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ("",))
            names.update(family.name + suffix for suffix in suffixes)
    return names


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    (raw,) = re.findall(r"```json\n(.*?)```", DOC, re.DOTALL)
    dashboard = json.loads(raw)
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(cloudpipe_[a-z_]+)", expr)}
    assert used and used <= _names(), used - _names()


def test_the_tables_name_every_metric() -> None:
    documented = set(re.findall(r"^\| `(cloudpipe_[a-z_]+)`", DOC, re.MULTILINE))
    registered = set()
    for build in (ServerMetrics, GatewayMetrics):
        registry = CollectorRegistry()
        build(registry)
        for family in registry.collect():
            registered.add(family.name + ("_total" if family.type == "counter" else ""))
    assert documented == registered, documented ^ registered
