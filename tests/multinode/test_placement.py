"""Jobs placed across three real Docker engines (tests/multinode/conftest.py)."""

from __future__ import annotations

import time

import pytest

from cloudpipe_sdk import JobStatus
from tests.multinode.conftest import containers_on
from tests.multinode.engines import EngineCluster
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def test_jobs_spread_over_the_nodes_by_their_reserved_capacity(
    cluster: EngineCluster, nodes_server: ServerProcess
) -> None:
    with nodes_server.client() as client:
        jobs = [client.shell("sleep 6; echo done", cpus=1, fresh_container=True) for _ in range(6)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            spread = {node.name: len(containers_on(node.base_url)) for node in cluster.nodes}
            if sum(spread.values()) == 6:
                break
            time.sleep(0.2)
        # each node declares 2 cpus: one job each, then a second each
        assert spread == {"node1": 2, "node2": 2, "node3": 2}
        for job in jobs:
            assert job.wait(timeout=60) is JobStatus.DONE
            assert job.snapshot.stdout == b"done\n"
