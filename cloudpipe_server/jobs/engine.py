"""Whether the executor's engine answers, as the dispatcher last saw it.

The dispatcher claims only while the engine answers: a Docker engine outage leaves
queued jobs queued instead of failing each one it claims. The state is learnt from a
cheap check (`Executor.reachable`) made when the server starts, on every heartbeat and,
while the engine is down, with exponential backoff; and from runs that could not reach
it. Every change is reported to `on_change` (the server's health service).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, retry_if_result, wait_exponential

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0


class EngineWatch:
    """The engine's state; `wait_up()` returns once it answers."""

    def __init__(
        self,
        check: Callable[[], Awaitable[bool]],
        on_change: Callable[[bool], Awaitable[None]] | None = None,
        *,
        max_backoff: float = MAX_BACKOFF_SECONDS,
    ) -> None:
        self._check = check
        self._on_change = on_change
        self._max_backoff = max_backoff
        self._up: bool | None = None  # None: not checked yet
        self._probe: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        """The engine answered the last check, and no run failed to reach it since."""
        return self._up is True

    async def check(self) -> bool:
        """Check now; returns (and records) whether the engine answers."""
        up = await self._check()
        await self._set(up, "" if up else "it did not answer a check")
        return up

    async def lost(self, why: str) -> None:
        """A run could not reach the engine."""
        await self._set(False, why)

    async def wait_up(self) -> None:
        """Return once the engine answers: at once when it is known up, otherwise after
        checks with exponential backoff (one probe shared by every waiter)."""
        if self._up:
            return
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._until_up(), name="cloudpipe-engine-probe")
        await asyncio.shield(self._probe)

    async def _until_up(self) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_result(lambda up: not up),
            wait=wait_exponential(multiplier=0.2, max=self._max_backoff),
        )
        await retrying(self.check)

    async def _set(self, up: bool, why: str) -> None:
        if up == self._up:
            return
        first = self._up is None
        self._up = up
        if up:
            log.info("the executor's engine answers%s; claiming jobs", "" if first else " again")
        else:
            log.warning("the executor's engine is unreachable (%s); not claiming jobs until it answers", why)
        if self._on_change is not None:
            try:
                await self._on_change(up)
            except Exception:  # reporting must never stop the dispatcher
                log.exception("could not report the engine's state")
