"""A node that dies mid-job (its dockerd and containerd shims killed, as when the host
goes away): placement stops using it within seconds, new jobs run on the others, and
once it has been down CLOUDPIPE_NODE_LOST_SECONDS (4 s here) its jobs are requeued
(restartable: they run again elsewhere) or STALLED, each on its lease. When it comes
back, what is left of their containers there is removed."""

from __future__ import annotations

import time

import pytest

from cloudpipe_sdk import JobStatus
from tests.multinode.conftest import containers_on
from tests.multinode.engines import EngineCluster
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def test_a_lost_nodes_jobs_are_requeued_or_stalled_and_the_others_go_on(
    cluster: EngineCluster, nodes_server: ServerProcess
) -> None:
    lost = cluster.nodes[1]
    with nodes_server.client() as client:
        jobs = [
            client.shell("echo start; sleep 8; echo end", cpus=1, fresh_container=True, restartable=n % 2 == 0)
            for n in range(6)
        ]
        deadline = time.monotonic() + 60
        while sum(len(containers_on(node.base_url)) for node in cluster.nodes) < 6:
            assert time.monotonic() < deadline, "the six jobs never all ran"
            time.sleep(0.2)
        on_lost = set(containers_on(lost.base_url))
        assert len(on_lost) == 2  # two per node: each declares 2 cpus
        cluster.stop(lost)
        try:
            quick = [client.shell("echo hi", cpus=1, fresh_container=True) for _ in range(4)]
            for job in quick:  # placed on the two nodes left
                assert job.wait(timeout=30) is JobStatus.DONE
            for job in jobs:
                status = job.wait(timeout=90)
                snapshot = job.snapshot
                if job.id not in on_lost:
                    assert (status, snapshot.attempts, snapshot.stdout) == (JobStatus.DONE, 1, b"start\nend\n")
                elif snapshot.spec.restartable:  # ran again, on another node
                    assert (status, snapshot.attempts, snapshot.stdout) == (JobStatus.DONE, 2, b"start\nend\n")
                else:
                    assert status is JobStatus.STALLED, (status, snapshot.reason)
                    assert "runner" in snapshot.reason and "lost" in snapshot.reason, snapshot.reason
        finally:
            cluster.start(lost)
    deadline = time.monotonic() + 60
    while containers_on(lost.base_url, every=True):  # the orphan sweep on its return
        assert time.monotonic() < deadline, f"left on {lost.name}: {containers_on(lost.base_url, every=True)}"
        time.sleep(0.5)
