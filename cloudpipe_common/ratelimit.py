"""Brute-force protection: a small in-process token bucket per key (an account name, a
source address). Only failures take tokens; tokens come back at a steady rate. While a
key's bucket is empty, callers refuse failed attempts (429 / RESOURCE_EXHAUSTED); a
password attempt is refused before the password is even hashed. IPv6 sources count by
their /64 (`address_key`), since one host commonly holds a whole /64.

In-process on purpose: the auth service and the server are single processes, and a
limiter shared through the store would turn every failed guess into a write.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cloudpipe_common.errors import TooManyAttempts


@dataclass(frozen=True)
class LimiterConfig:
    """`burst` failures are allowed at once, then one more every `refill_seconds`.
    `burst <= 0` disables the limiter."""

    burst: int = 10
    refill_seconds: float = 6.0
    max_keys: int = 100_000


def address_key(host: str) -> str:
    """The limiter's name for a client address: an IPv4 address as is, an IPv6 address
    by its /64 (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address as its IPv4 address;
    anything that is not an address (`unknown`, a Unix socket path) unchanged."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FailureLimiter:
    """Token buckets keyed by strings such as `account:alice` or `peer:10.0.0.7`."""

    def __init__(self, config: LimiterConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self._config.burst), now))
        refilled = tokens + (now - at) / self._config.refill_seconds
        return min(float(self._config.burst), refilled)

    def retry_after(self, *keys: str) -> float:
        """0 when every key may try again now, else seconds until all of them may."""
        if self._config.burst <= 0:
            return 0.0
        now = self._clock()
        wait = 0.0
        for key in keys:
            tokens = self._tokens(key, now)
            if tokens < 1:
                wait = max(wait, (1 - tokens) * self._config.refill_seconds)
        return wait

    def check(self, *keys: str, what: str = "authentication") -> None:
        """Raise TooManyAttempts while any key's bucket is empty."""
        wait = self.retry_after(*keys)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyAttempts(f"too many failed {what} attempts; retry in {seconds} s", seconds)

    def fail(self, *keys: str) -> None:
        """Record one failure against each key."""
        if self._config.burst <= 0:
            return
        now = self._clock()
        if len(self._buckets) >= self._config.max_keys:
            self._prune(now)
        for key in keys:
            self._buckets[key] = (max(0.0, self._tokens(key, now) - 1), now)

    def _prune(self, now: float) -> None:
        """Forget full buckets; if that is not enough, forget the oldest half."""
        full = [key for key in self._buckets if self._tokens(key, now) >= self._config.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._config.max_keys:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for key in oldest[: len(oldest) // 2]:
                del self._buckets[key]
