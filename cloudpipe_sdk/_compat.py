"""What the SDK needs from Python 3.11 on older interpreters (it supports 3.10): the
`tomllib` reader (the `tomli` backport below 3.11), `datetime.UTC`, and `within`, a
wait with a timeout that raises the builtin TimeoutError and keeps a cancellation."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from datetime import timezone
from typing import TypeVar

T = TypeVar("T")

if sys.version_info >= (3, 11):
    import tomllib

    async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
        """`await awaitable`, TimeoutError after `timeout` seconds. asyncio.timeout, not
        wait_for: 3.11's wait_for loses a cancellation that arrives as the wait ends."""
        async with asyncio.timeout(timeout):
            return await awaitable

else:  # pragma: no cover - exercised by the wheel test on Python 3.10
    import tomli as tomllib

    async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
        """`await awaitable`, TimeoutError after `timeout` seconds (3.10 has no
        asyncio.timeout, and its wait_for raises asyncio.TimeoutError, another class)."""
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError from None


UTC = timezone.utc

__all__ = ["UTC", "tomllib", "within"]
