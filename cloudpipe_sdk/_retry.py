"""The one policy for an unavailable server (gRPC UNAVAILABLE), for unary calls and
for streams alike: try again with exponential backoff (0.1 s, doubling, at most 2 s
apart) until the server has been unavailable for `retry_for` seconds in a row, then
raise Unavailable.

Unary calls use `retrying` / `async_retrying`. Streams (Wait, WatchMany, Attach) keep
an `Outage` per stream: `opened()` before each connection, `progress()` for each
message, `delay()` after a lost connection (the seconds to sleep, or Unavailable). A
connection that delivered a message, or stayed open longer than the longest backoff,
shows the server was up: the clock starts again from its loss.

Each outage is logged once, at WARNING, on the `cloudpipe_sdk.connection` logger, when
the first retry begins ("cannot reach HOST:PORT, retrying for up to 10 s..."): the
`cloudpipe` CLI shows these lines on stderr; a program sees them if it configures
logging. Giving up raises Unavailable naming the address and how long it tried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

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
logger = logging.getLogger("cloudpipe_sdk.connection")


def unavailable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE


def _announce(target: str, retry_for: float) -> Callable[[RetryCallState], None]:
    """tenacity's `before_sleep`: say once per call that the server is being retried."""

    def before_sleep(state: RetryCallState) -> None:
        if state.attempt_number == 1:
            logger.warning("cannot reach %s, retrying for up to %g s...", target, retry_for)

    return before_sleep


def gave_up(exc: grpc.RpcError, target: str, retry_for: float) -> Unavailable:
    """The error after the last retry of an unavailable server."""
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    error = Unavailable(f"cannot reach the server at {target} (tried for {retry_for:g} s): {details} (UNAVAILABLE)")
    error.code = "UNAVAILABLE"
    return error


def retrying(retry_for: float, *, retry: bool = True, target: str = "the server") -> Retrying:
    """For a unary call; `retry=False` makes one attempt (best-effort cleanup)."""
    stop = stop_after_delay(retry_for) if retry else stop_after_attempt(1)
    notice = _announce(target, retry_for)
    return Retrying(retry=retry_if_exception(unavailable), stop=stop, wait=WAIT, reraise=True, before_sleep=notice)


def async_retrying(retry_for: float, *, retry: bool = True, target: str = "the server") -> AsyncRetrying:
    stop = stop_after_delay(retry_for) if retry else stop_after_attempt(1)
    notice = _announce(target, retry_for)
    return AsyncRetrying(retry=retry_if_exception(unavailable), stop=stop, wait=WAIT, reraise=True, before_sleep=notice)


class Outage:
    """Reconnection of one stream under the policy above; `what` names it in the error,
    `target` (the address) in the notice."""

    def __init__(self, retry_for: float, what: str, target: str = "the server") -> None:
        self._retry_for = retry_for
        self._what = what
        self._target = target
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
            logger.warning(
                "lost the connection to %s (%s), reconnecting for up to %g s...",
                self._target,
                self._what,
                self._retry_for,
            )
        else:
            self._state.attempt_number += 1
        self._state.outcome_timestamp = now
        if self._stop(self._state):
            raise Unavailable(
                f"{self._what}: cannot reach the server at {self._target} (tried for {self._retry_for:g} s)"
            )
        return float(WAIT(self._state))
