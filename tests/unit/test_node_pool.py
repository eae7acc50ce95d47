"""NodePoolExecutor's own rules, over FakeEngine executors: a double of one engine's
executor, to make a node fail on cue. The pool over real engines in network namespaces
is tests/multinode."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from cloudpipe_server.executors import nodes as pool_module
from cloudpipe_server.executors.base import (
    Delivery,
    Executor,
    ExecutorUnavailable,
    Limits,
    ManagedContainer,
    RunObserver,
    Signal,
)
from cloudpipe_server.executors.nodes import NodePoolExecutor, PoolNode
from cloudpipe_server.models import Job, JobSpec, JobStatus, Outcome
from cloudpipe_server.nodes.spec import NodeSpec

NOW = datetime(2026, 12, 8, tzinfo=UTC)
LIMITS = Limits(cpus=4.0, memory_bytes=1 << 30, pids=100, max_runtime=None, network=False)


class FakeEngine(Executor):
    """A double of one engine's executor: answers pings as `up` says, fails its next
    `failures` runs as an engine that did not answer, and counts the runs it did."""

    def __init__(self, *, up: bool = True, failures: int = 0) -> None:
        self.up = up
        self.failures = failures
        self.ran: list[int] = []

    def start(self) -> None:
        pass

    async def reachable(self) -> bool:
        return self.up

    async def run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        if self.failures:
            self.failures -= 1
            self.up = False
            raise ExecutorUnavailable("the Docker engine did not answer")
        self.ran.append(job.id)
        return Outcome(JobStatus.DONE, NOW, return_code=0)

    async def adopt(self, job: Job, limits: Limits) -> Outcome | None:
        return None

    async def kill(self, job_id: int) -> bool:
        return False

    async def signal(self, job_id: int, signal: Signal) -> bool:
        return False

    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        return "not-started"

    async def close_stdin(self, job_id: int) -> Delivery:
        return "not-started"

    async def list_managed(self) -> list[ManagedContainer]:
        return []

    async def remove(self, container_id: str) -> None:
        pass

    async def close(self) -> None:
        pass


async def no_info() -> Mapping[str, Any]:
    return {}


def pool(**engines: tuple[FakeEngine, float]) -> NodePoolExecutor:
    return NodePoolExecutor(
        [
            PoolNode(NodeSpec(name, f"unix:///{name}.sock", cpus=cpus, memory_bytes=8 << 30), e, no_info)
            for name, (e, cpus) in engines.items()
        ],
        lambda: NOW,
    )


def job(job_id: int) -> Job:
    return Job(id=job_id, account="alice", spec=JobSpec(cmd="true"), status=JobStatus.PROCESSING, created_at=NOW)


async def test_a_job_that_could_not_start_on_the_only_node_big_enough_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "CHECK_INTERVAL", 0.01)
    big, small = FakeEngine(failures=1), FakeEngine()
    nodes = pool(big=(big, 8), small=(small, 2))
    assert await nodes.reachable()
    # big fails once; small is too small: back to the queue, never ERROR "too big"
    with pytest.raises(ExecutorUnavailable, match="no available node has 4 cpus"):
        await nodes.run(job(1), "img", LIMITS, observer=None)  # type: ignore[arg-type]
    big.up = True
    assert await nodes.reachable()
    outcome = await nodes.run(job(1), "img", LIMITS, observer=None)  # type: ignore[arg-type]
    assert outcome.status is JobStatus.DONE and big.ran == [1] and small.ran == []


async def test_a_job_that_could_not_start_on_one_node_runs_on_another() -> None:
    first, second = FakeEngine(failures=1), FakeEngine()
    nodes = pool(a=(first, 8), b=(second, 8))
    assert await nodes.reachable()
    outcome = await nodes.run(job(2), "img", LIMITS, observer=None)  # type: ignore[arg-type]
    assert outcome.status is JobStatus.DONE and second.ran == [2]
    assert [load.up for load in nodes.nodes] == [False, True]  # a is known down at once
