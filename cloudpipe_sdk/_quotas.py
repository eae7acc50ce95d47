"""`client.quotas`: per-account quotas. Anyone reads their own; the admin account reads
anyone's, lists the accounts that have overrides, and sets or clears an account's
overrides of the server's defaults (CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT,
CLOUDPIPE_MAX_RUNNING_PER_ACCOUNT). `Quotas` for `Client`, `AsyncQuotas` for
`AsyncClient`; the calls are built here as `Rpc`s, the I/O is the transport's.

A limit is None (the server's default; in `AccountQuotas.max_queued` and `max_running`,
never: those are the limits in force), 0 (no limit) or N. Anyone but the admin setting
quotas gets AuthError (PERMISSION_DENIED); a negative or absurd limit InvalidRequest,
before anything is sent; an account that does not exist NotFound.

Example::

    client.quotas.get()                                   # your own limits in force
    client.quotas.set("alice@example.com", max_queued=50, max_running=4)   # the admin
    client.quotas.set("alice@example.com", max_running=None)   # max_running: the default again
    client.quotas.clear("alice@example.com")              # both: the defaults again
    client.quotas.list()                                  # (defaults, [AccountQuotas...])
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudpipe_proto.v1 import quotas_pb2 as pb
from cloudpipe_sdk._compat import UTC
from cloudpipe_sdk._errors import InvalidRequest
from cloudpipe_sdk._rpc import Rpc

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import AsyncTransport, Transport

# The server's bounds (a limit past them is refused there too).
MAX_QUEUED_LIMIT = 1_000_000
MAX_RUNNING_LIMIT = 100_000

_KEEP: Any = object()  # `set`'s default: keep the account's current override


@dataclass(frozen=True)
class QuotaLimits:
    """Limits of jobs per account: `max_queued` counts waiting + queued jobs (a submit
    past it is ResourceExhausted), `max_running` running ones (more stay queued). None:
    the server's default; 0: no limit."""

    max_queued: int | None = None
    max_running: int | None = None


@dataclass(frozen=True)
class AccountQuotas:
    """One account's quotas: `override` as the admin set it (None fields follow the
    server's default), `max_queued`/`max_running` the limits in force (0: none), and when
    the override was last set (None: it has none)."""

    account: str
    override: QuotaLimits
    max_queued: int
    max_running: int
    updated_at: datetime | None = None


def _limits_from_pb(message: pb.QuotaLimits) -> QuotaLimits:
    return QuotaLimits(
        message.max_queued if message.HasField("max_queued") else None,
        message.max_running if message.HasField("max_running") else None,
    )


def quotas_from_pb(message: pb.AccountQuotas) -> AccountQuotas:
    updated = message.updated_at.ToDatetime(tzinfo=UTC) if message.HasField("updated_at") else None
    return AccountQuotas(
        message.account,
        _limits_from_pb(message.override),
        message.effective.max_queued,
        message.effective.max_running,
        updated,
    )


def _checked(name: str, value: object, bound: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: a whole number or None (the default), got {type(value).__name__}")
    if value < 0:
        raise InvalidRequest(f"{name}: must not be negative (0 is no limit), got {value}")
    if value > bound:
        raise InvalidRequest(f"{name}: at most {bound}, got {value}")
    return value


def get_quotas(account: str = "") -> Rpc[AccountQuotas]:
    return Rpc("quotas", "Get", pb.GetQuotasRequest(account=account), quotas_from_pb)


def set_quotas(account: str, max_queued: int | None, max_running: int | None) -> Rpc[AccountQuotas]:
    """The Set call (idempotent: it replaces the override whole, so it is retried)."""
    if not isinstance(account, str) or not account.strip():
        raise InvalidRequest("account: name the account whose quotas to set")
    override = pb.QuotaLimits()
    queued = _checked("max_queued", max_queued, MAX_QUEUED_LIMIT)
    running = _checked("max_running", max_running, MAX_RUNNING_LIMIT)
    if queued is not None:
        override.max_queued = queued
    if running is not None:
        override.max_running = running
    return Rpc("quotas", "Set", pb.SetQuotasRequest(account=account, override=override), quotas_from_pb)


def list_quotas() -> Rpc[tuple[QuotaLimits, list[AccountQuotas]]]:
    def parse(answer: pb.ListQuotasResponse) -> tuple[QuotaLimits, list[AccountQuotas]]:
        return _limits_from_pb(answer.defaults), [quotas_from_pb(q) for q in answer.accounts]

    return Rpc("quotas", "List", pb.ListQuotasRequest(), parse)


def _precheck(account: str, max_queued: Any, max_running: Any) -> bool:
    """Check what was given before anything is sent; whether the current override must
    be read first (a limit left out keeps it)."""
    if not isinstance(account, str) or not account.strip():
        raise InvalidRequest("account: name the account whose quotas to set")
    if max_queued is not _KEEP:
        _checked("max_queued", max_queued, MAX_QUEUED_LIMIT)
    if max_running is not _KEEP:
        _checked("max_running", max_running, MAX_RUNNING_LIMIT)
    return max_queued is _KEEP or max_running is _KEEP


def _merged(current: QuotaLimits, max_queued: Any, max_running: Any) -> tuple[int | None, int | None]:
    return (
        current.max_queued if max_queued is _KEEP else max_queued,
        current.max_running if max_running is _KEEP else max_running,
    )


class Quotas:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def get(self, account: str = "") -> AccountQuotas:
        """An account's quotas (default: yours). Another account's is the admin's only
        (AuthError); NotFound for an account that does not exist."""
        return self._transport.call(get_quotas(account))

    def set(self, account: str, *, max_queued: int | None = _KEEP, max_running: int | None = _KEEP) -> AccountQuotas:
        """Override an account's limits (the admin only). A limit left out keeps the
        account's current override; None makes it follow the server's default again; 0
        is no limit. Returns the quotas now in force.

        Example::

            client.quotas.set("alice@example.com", max_queued=50)   # max_running unchanged
        """
        if _precheck(account, max_queued, max_running):
            current = self._transport.call(get_quotas(account)).override
            max_queued, max_running = _merged(current, max_queued, max_running)
        return self._transport.call(set_quotas(account, max_queued, max_running))

    def clear(self, account: str) -> AccountQuotas:
        """Remove an account's overrides: it runs under the server's defaults again."""
        return self._transport.call(set_quotas(account, None, None))

    def list(self) -> tuple[QuotaLimits, builtins.list[AccountQuotas]]:
        """The server's defaults and every account that has an override, by name (the
        admin only)."""
        return self._transport.call(list_quotas())


class AsyncQuotas:
    """As `Quotas`, awaited."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def get(self, account: str = "") -> AccountQuotas:
        return await self._transport.call(get_quotas(account))

    async def set(
        self, account: str, *, max_queued: int | None = _KEEP, max_running: int | None = _KEEP
    ) -> AccountQuotas:
        if _precheck(account, max_queued, max_running):
            current = (await self._transport.call(get_quotas(account))).override
            max_queued, max_running = _merged(current, max_queued, max_running)
        return await self._transport.call(set_quotas(account, max_queued, max_running))

    async def clear(self, account: str) -> AccountQuotas:
        return await self._transport.call(set_quotas(account, None, None))

    async def list(self) -> tuple[QuotaLimits, builtins.list[AccountQuotas]]:
        return await self._transport.call(list_quotas())
