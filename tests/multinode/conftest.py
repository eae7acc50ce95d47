"""Three real Docker engines in network namespaces (tests/multinode/engines.py), each
loaded with the default runner image from the machine's engine, and a server whose
nodes are those three engines (CLOUDPIPE_NODES_FILE)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudpipe_server.config import DEFAULT_RUNNER_IMAGE
from tests.multinode.engines import EngineCluster
from tests.support import ServerProcess, start_server


def load_image(image: str, base_url: str) -> None:
    """Copy `image` from the machine's engine into another (no registry reachable)."""
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
        subprocess.run(["docker", "-H", base_url, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
        assert save.wait() == 0


@pytest.fixture(scope="module")
def cluster() -> Iterator[EngineCluster]:
    with EngineCluster(3) as engines:
        for node in engines.nodes:
            load_image(DEFAULT_RUNNER_IMAGE, node.base_url)
        yield engines


@pytest.fixture(scope="module")
def nodes_server(cluster: EngineCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("nodes-server")
    nodes_file = data / "nodes.json"
    nodes_file.write_text(json.dumps([{"name": n.name, "url": n.base_url, "cpus": 2} for n in cluster.nodes]))
    server = start_server(
        data / "server",
        env={
            "CLOUDPIPE_NODES_FILE": str(nodes_file),
            "CLOUDPIPE_MAX_CONCURRENT_JOBS": "12",
            "CLOUDPIPE_PULL_MISSING_IMAGES": "false",
            "CLOUDPIPE_NODE_LOST_SECONDS": "4",
        },
    )
    yield server
    server.stop()


def containers_on(base_url: str, *, every: bool = False) -> list[int]:
    """The job ids of the job containers running (`every`: or stopped) on one engine."""
    listed = subprocess.run(
        [
            *("docker", "-H", base_url, "ps", *(["-a"] if every else [])),
            *("--filter", "label=org.cloudpipe.job", "--format", '{{.Label "org.cloudpipe.job"}}'),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [int(line) for line in listed.stdout.split()]


def server_log(server: ServerProcess) -> str:
    return Path(server.log_path).read_text(errors="replace")
