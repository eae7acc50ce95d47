"""The warm pool: which warm container takes a job, and when containers are started,
kept and removed.

- A job takes an idle container of its key (account, image, resource shape), the one
  that ran a job most recently first, or waits for one of its key that is starting; a
  key's containers never serve another key, so never another account.
- With no idle container of its key, one is started if the pool has room, else the
  least recently used idle container of another key is evicted to make room; when
  every container is busy the caller runs the job in a fresh container.
- When a key's last idle container is taken and there is room, one more is started in
  the background, so a stream of jobs finds the next container warm (the pool grows
  to the concurrency it sees, up to `max_containers`).
- Containers idle for `idle_seconds` are removed; so is a container that died, and a
  replacement is started when it died under a job.
- Keys given to `prewarm` are started right away (after the server starts).

Starting and removing containers is injected (`spawn`, `remove`), so the rules can
be tested without an engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from cloudpipe_common.logs import background_context
from cloudpipe_server.executors.warm_container import PoolKey, WarmContainer

log = logging.getLogger(__name__)

BROKEN_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class PoolLimits:
    max_containers: int
    idle_seconds: float


class WarmPool:
    def __init__(
        self,
        limits: PoolLimits,
        spawn: Callable[[PoolKey], Awaitable[WarmContainer]],
        remove: Callable[[WarmContainer], Awaitable[None]],
        on_acquire: Callable[[bool], None] | None = None,
    ) -> None:
        self._limits = limits
        self._on_acquire = on_acquire  # True: an idle container was reused (metrics)
        self._spawn = spawn
        self._remove = remove
        self._idle: dict[PoolKey, list[WarmContainer]] = {}
        self._containers: dict[str, WarmContainer] = {}
        self._starting: dict[PoolKey, int] = {}
        self._released: dict[PoolKey, asyncio.Event] = {}
        self._broken: dict[PoolKey, float] = {}  # key -> monotonic time until which it is not tried
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # -- what the executor asks ---------------------------------------------------------

    @property
    def size(self) -> int:
        """Containers started or starting."""
        return len(self._containers) + sum(self._starting.values())

    def knows(self, container_id: str) -> bool:
        return container_id in self._containers

    def containers(self) -> list[WarmContainer]:
        return list(self._containers.values())

    def start(self, prewarm: Iterable[tuple[PoolKey, int]] = ()) -> None:
        """Begin idle eviction, and warm these keys up (in the background)."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_idle(), name="cloudpipe-warm-sweeper")
        for key, count in prewarm:
            for _ in range(count):
                if self.size < self._limits.max_containers:
                    self._background(self._add_idle(key))

    async def acquire(self, key: PoolKey, give_up: Callable[[], bool] = lambda: False) -> WarmContainer | None:
        """A container of `key`, now busy; None when the pool cannot give one (the
        caller runs a fresh container instead), or when `give_up()` says so while
        waiting (call `wake(key)` after it changes)."""
        container = None
        reused = False
        while container is None:
            if self._closed or self._broken.get(key, 0.0) > time.monotonic() or give_up():
                self._acquired(False)
                return None
            container = self._take_idle(key)
            if container is not None:
                reused = True
                break
            if self.size < self._limits.max_containers or self._evict_one(other_than=key):
                container = await self._start(key)
                if container is None:
                    self._acquired(False)
                    return None
            elif self._starting.get(key):  # one of ours is on its way: wait for it
                released = self._released.setdefault(key, asyncio.Event())
                released.clear()
                await released.wait()
            else:
                self._acquired(False)
                return None
        container.busy = True
        self._acquired(reused)
        self._keep_one_ahead(key)
        return container

    def _acquired(self, reused: bool) -> None:
        if self._on_acquire is not None:
            self._on_acquire(reused)

    def release(self, container: WarmContainer) -> None:
        """The job is over; the container takes the next one (or goes, if it died)."""
        container.busy = False
        if not container.alive or self._closed or container.id not in self._containers:
            self._background(self.discard(container, replace=not self._closed))
        else:
            self._idle.setdefault(container.key, []).append(container)
        self.wake(container.key)

    def wake(self, key: PoolKey) -> None:
        """Jobs waiting for a container of `key` look again (and may give up)."""
        released = self._released.get(key)
        if released is not None:
            released.set()

    async def discard(self, container: WarmContainer, *, replace: bool = False) -> None:
        """Remove a container from the pool and the engine; with `replace`, start
        another of its key if there is room (it died under a job)."""
        self._containers.pop(container.id, None)
        idle = self._idle.get(container.key)
        if idle and container in idle:
            idle.remove(container)
        try:
            await container.close()
            await self._remove(container)
        except Exception:  # the orphan sweep removes it later
            log.exception("warm container %s: could not remove it", container.id[:12])
        if replace and not self._closed and self.size < self._limits.max_containers:
            self._background(self._add_idle(container.key))

    def discard_soon(self, container: WarmContainer) -> None:
        self._background(self.discard(container))

    async def close(self) -> None:
        """Remove every container (busy ones too: a warm job cannot be re-adopted)."""
        self._closed = True
        for key in list(self._released):
            self.wake(key)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await asyncio.gather(*(self.discard(c) for c in list(self._containers.values())), return_exceptions=True)
        # containers still starting discard themselves; watchers end with their container
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- rules --------------------------------------------------------------------------

    def _take_idle(self, key: PoolKey) -> WarmContainer | None:
        """The idle container of `key` that ran a job most recently (its caches are
        warm, and jobs of one account see each other's files predictably)."""
        idle = self._idle.get(key)
        while idle:
            container = max(idle, key=lambda c: (c.jobs_run > 0, c.last_used))
            idle.remove(container)
            if container.alive:
                return container
            self._background(self.discard(container))
        return None

    def _evict_one(self, other_than: PoolKey) -> bool:
        """Remove the least recently used idle container of another key."""
        candidates = [c for key, idle in self._idle.items() if key != other_than for c in idle]
        if not candidates:
            return False
        victim = min(candidates, key=lambda c: c.last_used)
        log.info("warm container %s (%s): evicted to make room", victim.id[:12], victim.key.account)
        self._idle[victim.key].remove(victim)
        self._containers.pop(victim.id, None)  # out of the count now; removed in the background
        self._background(self.discard(victim))
        return True

    def _keep_one_ahead(self, key: PoolKey) -> None:
        if self._idle.get(key) or self._starting.get(key) or self.size >= self._limits.max_containers:
            return
        self._background(self._add_idle(key))

    async def _start(self, key: PoolKey) -> WarmContainer | None:
        self._starting[key] = self._starting.get(key, 0) + 1
        try:
            container = await self._spawn(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "warm containers for %s/%s unavailable for %.0f s (jobs run in fresh containers): %s",
                key.account,
                key.image,
                BROKEN_BACKOFF_SECONDS,
                exc,
            )
            self._broken[key] = time.monotonic() + BROKEN_BACKOFF_SECONDS
            return None
        finally:
            self._starting[key] -= 1
            if not self._starting[key]:
                del self._starting[key]
            self.wake(key)  # who waited for this start looks again
        if self._closed:
            await self.discard(container)
            return None
        self._containers[container.id] = container
        self._watch(container)
        return container

    async def _add_idle(self, key: PoolKey) -> None:
        container = await self._start(key)
        if container is not None:
            self.release(container)

    def _watch(self, container: WarmContainer) -> None:
        async def watch() -> None:
            await container.gone.wait()
            if not container.busy and container.id in self._containers:
                log.info("warm container %s: ended while idle; removing it", container.id[:12])
                await self.discard(container)

        self._background(watch())

    async def _sweep_idle(self) -> None:
        interval = max(min(self._limits.idle_seconds / 2, 5.0), 0.05)
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self._limits.idle_seconds
            for key, idle in list(self._idle.items()):
                for container in [c for c in idle if c.last_used < cutoff]:
                    if container not in self._idle.get(key, ()) or container.last_used >= cutoff:
                        continue  # a job took it while an earlier one was being removed
                    log.info("warm container %s (%s): idle, removing it", container.id[:12], key.account)
                    await self.discard(container)
                if not self._idle.get(key):
                    self._idle.pop(key, None)

    def _background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await work
                except Exception:
                    log.exception("warm pool: background work failed")

        task = asyncio.create_task(run(), context=background_context())  # pool work, no one job's
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
