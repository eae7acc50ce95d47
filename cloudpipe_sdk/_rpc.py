"""Calls described without being made, so the sync and the asyncio transports run the
same ones: an `Rpc` is one unary call (which service and method, the request, how to
read the answer, whether to retry it); a `Plan` is an operation of several calls (save:
get, then create or update), a generator that yields Rpcs and receives their answers,
or has their CloudpipeError thrown in.

Example::

    def save(name: str, spec: JobSpec) -> Plan[SavedJob]:
        try:
            current = yield get_saved_job(name)
        except NotFound:
            return (yield create_saved_job(name, spec))
        ...

    transport.run(save("report", spec))          # Transport
    await transport.run(save("report", spec))    # AsyncTransport
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from cloudpipe_sdk._errors import CloudpipeError

T = TypeVar("T")
Service = Literal["jobs", "saved_jobs", "schedules", "images", "volumes", "secrets", "quotas"]
Plan = Generator["Rpc[Any]", Any, T]


@dataclass(frozen=True)
class Rpc(Generic[T]):
    """One unary call. `retry=False`: one attempt (calls that change something and are
    not idempotent, and best-effort cleanup). The request is left out of the repr: a
    SetSecretRequest carries a secret's value."""

    service: Service
    method: str
    request: Any = field(repr=False)
    parse: Callable[[Any], T]
    retry: bool = True


@dataclass(frozen=True)
class Done(Generic[T]):
    """What a plan returned."""

    value: T


def single(rpc: Rpc[T]) -> Plan[T]:
    """A plan of one call."""
    return (yield rpc)  # type: ignore[no-any-return]


def advance(plan: Plan[T], answer: Any, error: CloudpipeError | None) -> Rpc[Any] | Done[T]:
    """Give the plan the last call's answer (or throw its error in); the next call, or
    Done with what the plan returned. Start a plan with (None, None)."""
    try:
        return plan.throw(error) if error is not None else plan.send(answer)
    except StopIteration as finished:
        return Done(finished.value)
