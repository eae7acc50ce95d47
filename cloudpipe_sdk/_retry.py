"""The one policy for an unavailable server (gRPC UNAVAILABLE), for unary calls and
for streams alike: try again with exponential backoff (0.1 s, doubling, at most 2 s
apart) until the server has been unavailable for `retry_for` seconds in a row, then
raise Unavailable.

Unary calls use `retrying` / `async_retrying`. Streams (Wait, WatchMany, Attach) keep
an `Outage` per stream: `opened()` before each connection, `progress()` for each
message, `delay()` after a lost connection (the seconds to sleep, or Unavailable). A
connection that delivered a message, or stayed open longer than the longest backoff,
shows the server was up: the clock starts again from its loss.
"""

from __future__ import annotations

import time

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from cloudpipe_sdk._errors import Unavailable

MAX_WAIT = 2.0
WAIT = wait_exponential(multiplier=0.1, max=MAX_WAIT)


def unavailable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE


def retrying(retry_for: float, *, retry: bool = True) -> Retrying:
    """For a unary call; `retry=False` makes one attempt (best-effort cleanup)."""
    stop = stop_after_delay(retry_for) if retry else stop_after_attempt(1)
    return Retrying(retry=retry_if_exception(unavailable), stop=stop, wait=WAIT, reraise=True)


def async_retrying(retry_for: float, *, retry: bool = True) -> AsyncRetrying:
    stop = stop_after_delay(retry_for) if retry else stop_after_attempt(1)
    return AsyncRetrying(retry=retry_if_exception(unavailable), stop=stop, wait=WAIT, reraise=True)


class Outage:
    """Reconnection of one stream under the policy above; `what` names it in the error."""

    def __init__(self, retry_for: float, what: str) -> None:
        self._retry_for = retry_for
        self._what = what
        self._stop = stop_after_delay(retry_for)
        self._state: RetryCallState | None = None
        self._opened = time.monotonic()

    def opened(self) -> None:
        self._opened = time.monotonic()

    def progress(self) -> None:
        self._state = None

    def delay(self) -> float:
        """Seconds to wait before reconnecting; Unavailable once the server has been
        unavailable for `retry_for` seconds in a row."""
        now = time.monotonic()
        if now - self._opened > MAX_WAIT:
            self._state = None  # that connection was up: a new outage begins
        if self._state is None:
            self._state = RetryCallState(Retrying(), None, (), {})
        else:
            self._state.attempt_number += 1
        self._state.outcome_timestamp = now
        if self._stop(self._state):
            raise Unavailable(f"{self._what}: the server has been unavailable for {self._retry_for:g} s")
        return float(WAIT(self._state))
