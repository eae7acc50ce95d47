"""Jobs across several Docker engines: `NodePoolExecutor` places each job on a node
(`nodes.placement`) and runs it through that node's own executor (a fresh-container
`DockerExecutor` with its warm pool, exactly as on one machine), then routes whatever
concerns the job (kill, signals, stdin, terminal size, re-adoption) to that node.

A node is up while its engine answers: every `CHECK_INTERVAL` each node is checked, and
a run that cannot reach its engine marks it down at once. Placement skips down and
drained nodes; a job that could not start on one node is placed again on another. The
pool answers `reachable()` while any node does, so the dispatcher keeps claiming while
one node of several is away. Each node's capacity (cpus, memory) is what the operator
declared, else the engine's own info, read when it first answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudpipe_common.waiting import within
from cloudpipe_server.executors.base import (
    Delivery,
    EngineLost,
    Executor,
    ExecutorUnavailable,
    Limits,
    ManagedContainer,
    RunObserver,
    Signal,
)
from cloudpipe_server.models import Job, JobStatus, Outcome
from cloudpipe_server.nodes.placement import NodeLoad, NoNode, place
from cloudpipe_server.nodes.spec import NodeSpec

log = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0  # seconds between checks of every node's engine
INFO_TIMEOUT = 5.0


@dataclass
class PoolNode:
    """A node: what was declared, its executor, how to read its engine's info (NCPU,
    MemTotal), and its load."""

    spec: NodeSpec
    executor: Executor
    info: Callable[[], Awaitable[Mapping[str, Any]]]
    load: NodeLoad = field(init=False)  # its capacity is known once `load.known`
    down_since: float = field(init=False, default_factory=time.monotonic)  # monotonic time it went down

    def __post_init__(self) -> None:
        declared = self.spec.cpus is not None and self.spec.memory_bytes is not None
        self.load = NodeLoad(
            self.spec.name, self.spec.cpus or 1.0, self.spec.memory_bytes or 1 << 30, up=False, known=declared
        )
        self._checking: asyncio.Task[bool] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    async def check(self) -> bool:
        """Whether the engine answers now; its capacity is read the first time it does.
        One check runs at a time per node: callers meanwhile share its answer (a silent
        engine's ping holds a thread until it times out)."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._checking)

    async def _check(self) -> bool:
        up = await self.executor.reachable()
        if up and not self.load.known:
            try:
                info = await within(self.info(), INFO_TIMEOUT)
            except Exception as exc:  # the engine answered a ping but not this: try again later
                log.warning("node %s: could not read its engine's info: %s", self.name, exc)
                up = False
            else:
                self.load.cpus = self.spec.cpus or float(info.get("NCPU") or 1)
                self.load.memory_bytes = self.spec.memory_bytes or int(info.get("MemTotal") or 1 << 30)
                self.load.known = True
        self.mark(up)
        return up

    def mark(self, up: bool) -> None:
        if up != self.load.up:
            log.warning("node %s: %s", self.name, "up" if up else "down: its engine does not answer")
            if not up:
                self.down_since = time.monotonic()
        self.load.up = up


class NodePoolExecutor(Executor):
    """Places jobs on `nodes` (see the module docstring)."""

    def __init__(
        self, nodes: Sequence[PoolNode], clock: Callable[[], datetime], *, node_lost_seconds: float = 60.0
    ) -> None:
        if not nodes:
            raise ValueError("a node pool needs at least one node")
        self._nodes = {node.name: node for node in nodes}
        self._placed: dict[int, PoolNode] = {}  # running (or lost) jobs -> their node
        self._containers: dict[str, PoolNode] = {}  # from list_managed, for remove()
        self._monitor: asyncio.Task[None] | None = None
        self._node_lost_seconds = node_lost_seconds
        self._clock = clock

    @property
    def nodes(self) -> list[NodeLoad]:
        return [node.load for node in self._nodes.values()]

    def start(self) -> None:
        for node in self._nodes.values():
            node.executor.start()
        if self._monitor is None:
            self._monitor = asyncio.get_running_loop().create_task(self._watch(), name="cloudpipe-nodes")

    async def _watch(self) -> None:
        while True:
            await self._check_all()
            await asyncio.sleep(CHECK_INTERVAL)

    async def _check_all(self) -> bool:
        results = await asyncio.gather(*(node.check() for node in self._nodes.values()), return_exceptions=True)
        return any(result is True for result in results)

    async def reachable(self) -> bool:
        """True as soon as one node answers (a dead node's check runs out its timeout
        in the background, without holding the dispatcher's claims back)."""
        checks = [asyncio.ensure_future(node.check()) for node in self._nodes.values()]
        for finished in asyncio.as_completed(checks):
            with contextlib.suppress(Exception):
                if await finished:
                    return True
        return False

    # -- running -----------------------------------------------------------------------

    async def run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        tried: set[str] = set()
        waited = False
        while True:
            chosen = place(self.nodes, limits.cpus, limits.memory_bytes, exclude=tried)
            if isinstance(chosen, NoNode):
                if chosen.ever:  # the job's own problem: no node could ever run it
                    return Outcome(JobStatus.ERROR, self._clock(), reason=chosen.reason)
                if not waited:  # only nodes away now could hold it: give them one check's time
                    waited = True
                    await asyncio.sleep(CHECK_INTERVAL)
                    tried.clear()
                    continue
                raise ExecutorUnavailable(chosen.reason)
            node = self._nodes[chosen.name]
            tried.add(node.name)
            self._reserve(node, limits, +1)
            self._placed[job.id] = node
            lost = False
            try:
                log.info("job %d: placed on node %s", job.id, node.name)
                return await node.executor.run(job, image, limits, observer)
            except ExecutorUnavailable as exc:  # nothing ran there: mark it down, try another
                node.mark(False)
                log.warning("job %d: node %s did not answer (%s); placing it again", job.id, node.name, exc)
            except EngineLost:
                node.mark(False)
                lost = True  # its container may run on: adopt() finds it on this node
                raise
            finally:
                self._reserve(node, limits, -1)
                if not lost:
                    self._placed.pop(job.id, None)

    def _reserve(self, node: PoolNode, limits: Limits, sign: int) -> None:
        node.load.reserved_cpus += sign * limits.cpus
        node.load.reserved_memory += sign * limits.memory_bytes
        node.load.running += sign

    async def adopt(self, job: Job, limits: Limits) -> Outcome | None:
        """On the job's node (after a restart of this server: on whichever node has its
        container). A node that does not answer is waited for, up to `node_lost_seconds`
        from when it went down; after that it is lost, and so is the job's container
        there: None, and the job's lease decides (requeued if restartable, else STALLED)."""
        placed = self._placed.get(job.id)
        # not known (this server restarted): the nodes that answer first, so a node that
        # is away delays only the jobs that are not found elsewhere
        candidates = [placed] if placed is not None else sorted(self._nodes.values(), key=lambda n: not n.load.up)
        for node in candidates:
            if not await self._until_up(node):
                log.warning("job %d: node %s lost (down over %g s)", job.id, node.name, self._node_lost_seconds)
                continue
            self._placed[job.id] = node  # kills and signals reach it while it is waited for
            self._reserve(node, limits, +1)  # it runs there until adopt returns
            try:
                outcome = await node.executor.adopt(job, limits)
            except EngineLost:
                node.mark(False)
                raise  # gone again as we asked: the dispatcher asks again, of this node
            except BaseException:
                self._placed.pop(job.id, None)
                raise
            finally:
                self._reserve(node, limits, -1)
            if outcome is not None:
                self._placed.pop(job.id, None)
                return outcome
        self._placed.pop(job.id, None)
        return None

    async def _until_up(self, node: PoolNode) -> bool:
        """Whether the node answers, waiting while it has been down less than
        `node_lost_seconds`."""
        delay = 0.2
        while not node.load.up and not await node.check():
            down_for = time.monotonic() - node.down_since
            if down_for >= self._node_lost_seconds:
                return False
            await asyncio.sleep(min(delay, self._node_lost_seconds - down_for))
            delay = min(delay * 2, CHECK_INTERVAL)
        return True

    # -- the job's node ---------------------------------------------------------------

    def _running(self, job_id: int) -> Executor | None:
        node = self._placed.get(job_id)
        return node.executor if node is not None else None

    async def kill(self, job_id: int) -> bool:
        executor = self._running(job_id)
        if executor is not None:
            return await executor.kill(job_id)
        for node in self._nodes.values():
            if node.load.up and await node.executor.kill(job_id):
                return True
        return False

    async def signal(self, job_id: int, signal: Signal) -> bool:
        executor = self._running(job_id)
        return await executor.signal(job_id, signal) if executor is not None else False

    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        executor = self._running(job_id)
        return await executor.write_stdin(job_id, data) if executor is not None else "not-started"

    async def close_stdin(self, job_id: int) -> Delivery:
        executor = self._running(job_id)
        return await executor.close_stdin(job_id) if executor is not None else "not-started"

    async def resize(self, job_id: int, rows: int, columns: int) -> Delivery:
        executor = self._running(job_id)
        return await executor.resize(job_id, rows, columns) if executor is not None else "not-started"

    async def image_labels(self, image: str) -> Mapping[str, str] | None:
        for node in self._nodes.values():
            if node.load.up:
                labels = await node.executor.image_labels(image)
                if labels is not None:
                    return labels
        return None

    # -- containers -------------------------------------------------------------------

    async def list_managed(self) -> list[ManagedContainer]:
        """Every node's that answers (a down node's containers are not known now)."""
        found: list[ManagedContainer] = []
        where: dict[str, PoolNode] = {}
        for node in self._nodes.values():
            if not node.load.up:
                continue
            try:
                containers = await node.executor.list_managed()
            except Exception as exc:
                log.warning("node %s: could not list its containers: %s", node.name, exc)
                continue
            where.update((container.container_id, node) for container in containers)
            found.extend(containers)
        self._containers = where  # this listing's only: the map never outgrows the nodes' containers
        return found

    async def remove(self, container_id: str) -> None:
        node = self._containers.pop(container_id, None)
        targets = [node] if node is not None else [n for n in self._nodes.values() if n.load.up]
        for target in targets:
            await target.executor.remove(container_id)

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for node in self._nodes.values():
            await node.executor.close()
