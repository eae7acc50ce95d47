"""The nodes an operator declares: a JSON file (CLOUDPIPE_NODES_FILE) holding a list of
`{"name": ..., "url": ..., "labels": {...}, "cpus": ..., "memory_bytes": ...}`. `url` is
a Docker engine URL (`unix:///path`, or `tcp://host:port` with the engine's standard
mutual TLS of DOCKER_CERT_PATH and DOCKER_TLS_VERIFY, which must be set for one);
`labels`, `cpus` and `memory_bytes` are optional (capacity is read from the engine's own
info when not given)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudpipe_server.errors import InvalidArgument

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
URL = re.compile(r"(unix://|tcp://)\S+")
MAX_NODES = 1000


@dataclass(frozen=True)
class NodeSpec:
    name: str
    url: str
    labels: Mapping[str, str] = field(default_factory=dict)
    cpus: float | None = None  # None: the engine's NCPU
    memory_bytes: int | None = None  # None: the engine's MemTotal


def load_nodes(path: str, env: Mapping[str, str]) -> list[NodeSpec]:
    """The nodes of the file at `path`; InvalidArgument naming what is wrong. A tcp://
    node needs the engine's mutual TLS in `env` (never plain TCP: anyone who reaches an
    engine's port owns its host)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidArgument(f"CLOUDPIPE_NODES_FILE: cannot read {path}: {exc.strerror}") from None
    nodes = parse_nodes(text, path)
    plain = [node.name for node in nodes if node.url.startswith("tcp://")]
    if plain and not (env.get("DOCKER_CERT_PATH") and env.get("DOCKER_TLS_VERIFY")):
        raise InvalidArgument(
            f"{path}: node {plain[0]} is tcp://, which needs the engine's mutual TLS: set DOCKER_CERT_PATH"
            " (its ca.pem, cert.pem and key.pem) and DOCKER_TLS_VERIFY=1"
        )
    return nodes


def parse_nodes(text: str, where: str = "nodes") -> list[NodeSpec]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{where}: must be a non-empty JSON list of nodes")
    if len(items) > MAX_NODES:
        raise InvalidArgument(f"{where}: at most {MAX_NODES} nodes, got {len(items)}")
    nodes = [_node(item, f"{where}[{n}]") for n, item in enumerate(items)]
    names = [node.name for node in nodes]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise InvalidArgument(f"{where}: node name {duplicate!r} is used twice")
    return nodes


def _node(item: Any, where: str) -> NodeSpec:
    if not isinstance(item, dict):
        raise InvalidArgument(f"{where}: must be an object with name and url")
    unknown = set(item) - {"name", "url", "labels", "cpus", "memory_bytes"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name, url = item.get("name"), item.get("url")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidArgument(f"{where}.name: 1 to 63 of a-z 0-9 . _ -, starting with a letter or digit")
    if not isinstance(url, str) or not URL.fullmatch(url):
        raise InvalidArgument(f"{where}.url: a Docker engine URL (unix:///path or tcp://host:port)")
    labels = item.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidArgument(f"{where}.labels: an object of strings")
    cpus = item.get("cpus")
    if cpus is not None and (not isinstance(cpus, int | float) or not math.isfinite(cpus) or cpus <= 0):
        raise InvalidArgument(f"{where}.cpus: a positive number")
    memory = item.get("memory_bytes")
    if memory is not None and (not isinstance(memory, int) or isinstance(memory, bool) or memory <= 0):
        raise InvalidArgument(f"{where}.memory_bytes: a positive integer")
    return NodeSpec(name, url, dict(labels), None if cpus is None else float(cpus), memory)
