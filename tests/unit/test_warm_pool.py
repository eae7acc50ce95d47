"""The warm pool's rules, with containers that are never started (no engine needed)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from cloudpipe_server.executors.warm_container import PoolKey, WarmContainer
from cloudpipe_server.executors.warm_pool import PoolLimits, WarmPool

ALICE = PoolKey("alice", "img", 1.0, 1 << 30, 512)
BOB = PoolKey("bob", "img", 1.0, 1 << 30, 512)


class Engine:
    """Counts what the pool starts and removes."""

    def __init__(self) -> None:
        self.started: list[WarmContainer] = []
        self.removed: list[str] = []
        self.fail = False
        self.gate: asyncio.Event | None = None  # when set: starts wait for it
        self.dead_on_arrival = False
        self.remove_gate: asyncio.Event | None = None  # when set: removals wait for it
        self._sockets: list[socket.socket] = []

    async def spawn(self, key: PoolKey) -> WarmContainer:
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("engine says no")
        sock = socket.socket()
        self._sockets.append(sock)
        container = WarmContainer(f"c{len(self.started)}{'0' * 12}", key, sock, 1 << 20)
        self.started.append(container)
        if self.dead_on_arrival:
            container.gone.set()
        return container

    async def remove(self, container: WarmContainer) -> None:
        self.removed.append(container.id)
        if self.remove_gate is not None:
            await self.remove_gate.wait()

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = Engine()
    yield e
    e.close()


@pytest.fixture
async def pool(engine: Engine) -> AsyncIterator[WarmPool]:
    p = WarmPool(PoolLimits(max_containers=3, idle_seconds=60), engine.spawn, engine.remove)
    p.start()
    yield p
    await p.close()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_released_container_takes_the_next_job_of_its_key(pool: WarmPool) -> None:
    first = await pool.acquire(ALICE)
    assert first is not None
    first.jobs_run += 1  # as the executor counts a job it hands over
    pool.release(first)
    await settle()
    again = await pool.acquire(ALICE)
    assert again is first  # the one that ran a job, not the spare warmed meanwhile
    assert again.busy


async def test_another_account_never_gets_the_container(pool: WarmPool, engine: Engine) -> None:
    mine = await pool.acquire(ALICE)
    assert mine is not None
    pool.release(mine)
    await settle()
    theirs = await pool.acquire(BOB)
    assert theirs is not None and theirs.key == BOB
    assert theirs is not mine and all(c.key == ALICE for c in engine.started if c is not theirs and c.key != BOB)


async def test_taking_the_last_idle_container_warms_one_more(pool: WarmPool, engine: Engine) -> None:
    first = await pool.acquire(ALICE)
    await settle()
    assert len(engine.started) == 2  # the one taken and a spare
    second = await pool.acquire(ALICE)
    assert second is not None and second is not first
    await settle()
    assert len(engine.started) == 3 and pool.size == 3  # the limit: no more spares


async def test_a_full_pool_evicts_the_least_recently_used_idle_container_of_another_key(
    pool: WarmPool, engine: Engine
) -> None:
    containers = [await pool.acquire(ALICE) for _ in range(3)]
    await settle()
    assert pool.size == 3
    for container in containers:
        assert container is not None
        pool.release(container)
    bobs = await pool.acquire(BOB)
    await settle()
    assert bobs is not None and bobs.key == BOB
    assert len(engine.removed) == 1 and pool.size == 3


async def test_when_every_container_is_busy_the_job_gets_none(pool: WarmPool) -> None:
    held = [await pool.acquire(ALICE) for _ in range(3)]
    assert all(held)
    assert await pool.acquire(BOB) is None


async def test_idle_containers_are_removed_after_the_idle_timeout(engine: Engine) -> None:
    pool = WarmPool(PoolLimits(max_containers=1, idle_seconds=0.1), engine.spawn, engine.remove)
    pool.start()
    try:
        container = await pool.acquire(ALICE)
        assert container is not None
        pool.release(container)
        await asyncio.sleep(0.4)
        assert engine.removed == [container.id] and pool.size == 0
    finally:
        await pool.close()


async def test_a_container_that_died_under_a_job_is_replaced(pool: WarmPool, engine: Engine) -> None:
    container = await pool.acquire(ALICE)
    assert container is not None
    await settle()
    spare_count = len(engine.started)
    await container.close()  # as if its agent died
    pool.release(container)
    await settle()
    assert container.id in engine.removed
    assert len(engine.started) == spare_count + 1


async def test_prewarm_starts_containers_in_the_background(engine: Engine) -> None:
    pool = WarmPool(PoolLimits(max_containers=4, idle_seconds=60), engine.spawn, engine.remove)
    pool.start([(ALICE, 2), (BOB, 1)])
    await settle()
    try:
        assert sorted(c.key.account for c in engine.started) == ["alice", "alice", "bob"]
        taken = await pool.acquire(BOB)
        assert taken is engine.started[2]
    finally:
        await pool.close()


async def test_an_engine_failure_sends_jobs_to_fresh_containers_for_a_while(pool: WarmPool, engine: Engine) -> None:
    engine.fail = True
    assert await pool.acquire(ALICE) is None
    engine.fail = False
    assert await pool.acquire(ALICE) is None  # backing off
    assert await pool.acquire(BOB) is not None


async def test_close_removes_every_container(engine: Engine) -> None:
    pool = WarmPool(PoolLimits(max_containers=3, idle_seconds=60), engine.spawn, engine.remove)
    pool.start()
    busy = await pool.acquire(ALICE)
    assert busy is not None
    await settle()
    await pool.close()
    assert sorted(engine.removed) == sorted(c.id for c in engine.started)
    assert await pool.acquire(ALICE) is None


async def test_a_job_waiting_for_a_start_that_fails_goes_fresh(engine: Engine) -> None:
    pool = WarmPool(PoolLimits(max_containers=1, idle_seconds=60), engine.spawn, engine.remove)
    engine.gate, engine.fail = asyncio.Event(), True
    try:
        first = asyncio.create_task(pool.acquire(ALICE))
        await settle()
        waiting = asyncio.create_task(pool.acquire(ALICE))  # the pool is full with the one starting
        await settle()
        engine.gate.set()
        assert await asyncio.wait_for(first, 1) is None
        assert await asyncio.wait_for(waiting, 1) is None
    finally:
        await pool.close()


async def test_a_job_waiting_for_a_container_that_arrives_dead_stops_waiting(engine: Engine) -> None:
    pool = WarmPool(PoolLimits(max_containers=2, idle_seconds=60), engine.spawn, engine.remove)
    try:
        held = await pool.acquire(ALICE)  # and a spare starts: held up at the gate, then dead
        assert held is not None
        engine.gate, engine.dead_on_arrival = asyncio.Event(), True
        await settle()
        waiting = asyncio.create_task(pool.acquire(ALICE))
        await settle()
        engine.gate.set()
        got = await asyncio.wait_for(waiting, 1)  # an answer, not a wait for ever
        assert got is not held
    finally:
        await pool.close()


async def test_a_job_killed_while_waiting_for_a_container_stops_waiting(engine: Engine) -> None:
    pool = WarmPool(PoolLimits(max_containers=1, idle_seconds=60), engine.spawn, engine.remove)
    engine.gate = asyncio.Event()
    killed = False
    try:
        starting = asyncio.create_task(pool.acquire(ALICE))
        await settle()
        waiting = asyncio.create_task(pool.acquire(ALICE, give_up=lambda: killed))
        await settle()
        killed = True
        pool.wake(ALICE)
        assert await asyncio.wait_for(waiting, 1) is None
        engine.gate.set()
        assert await starting is not None
    finally:
        await pool.close()


async def test_the_idle_sweep_leaves_a_container_a_job_took_meanwhile(engine: Engine) -> None:
    pool = WarmPool(PoolLimits(max_containers=2, idle_seconds=0.1), engine.spawn, engine.remove)
    pool.start([(ALICE, 2)])
    try:
        await settle()
        engine.remove_gate = asyncio.Event()  # the sweep's first removal takes its time
        while not engine.removed:
            await asyncio.sleep(0.01)
        taken = await pool.acquire(ALICE)
        assert taken is not None and taken.id not in engine.removed
        engine.remove_gate.set()
        await asyncio.sleep(0.3)  # more sweeps
        assert taken.id not in engine.removed and taken.alive
        pool.release(taken)
    finally:
        engine.remove_gate = None
        await pool.close()
