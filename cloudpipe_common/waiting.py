"""Waiting with a timeout that never loses a cancellation.

On Python 3.11, `asyncio.wait_for` returns the inner result when the task waiting in it
is cancelled just as the inner wait completes: the cancellation is gone, and a loop
that waits that way runs on after its owner cancelled it (and whoever awaits the
cancelled task waits for good). `asyncio.timeout` has no such window; these helpers
are written with it (Python 3.12 rewrote `wait_for` the same way)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `event` is set or `timeout` seconds have passed; whether it is set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """`await awaitable`, raising `TimeoutError` after `timeout` seconds (None: no limit)."""
    async with asyncio.timeout(timeout):
        return await awaitable
