"""Per-account quotas: the server's defaults (`Quotas`, from CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT
and _RUNNING_PER_ACCOUNT) and the admin's overrides of them for one account (stored in
the `QuotaStore`). What is in force for an account is its override where it has one,
else the default; 0 is no limit.

Who reads them: `JobService.submit` (the queued limit, through `AccountQuotaService.max_queued`),
the store's claim (the running limit, read in the claim's own query: the dispatcher
passes only the default), `UsageService` (the caller's limits, for the overview) and
`DeletedAccounts` (a deleted account's overrides go with it). Only the admin reads
another account's or changes any (`QuotaService` over gRPC)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cloudpipe_server.auth.base import Principal, Standing, StandingCheck
from cloudpipe_server.errors import InvalidArgument, NotFound, PermissionDenied
from cloudpipe_server.store.base import AccountQuota, QuotaStore

# Bounds of an override: a limit past these is a typo, not a plan (0 is "no limit").
MAX_QUEUED_LIMIT = 1_000_000
MAX_RUNNING_LIMIT = 100_000
MAX_ACCOUNT_NAME = 256


@dataclass(frozen=True)
class Quotas:
    """The server's per-account limits (the defaults); 0: none."""

    max_queued_per_account: int = 0
    max_running_per_account: int = 0


@dataclass(frozen=True)
class AccountQuotas:
    """One account's overrides (None: the default) and the limits in force (0: none)."""

    account: str
    override: AccountQuota
    max_queued: int
    max_running: int


def _checked(name: str, value: int | None, bound: int) -> int | None:
    if value is None:
        return None
    if value < 0:
        raise InvalidArgument(f"{name}: must not be negative (0 is no limit), got {value}")
    if value > bound:
        raise InvalidArgument(f"{name}: at most {bound}, got {value}")
    return value


class QuotaService:
    """Reading and (the admin only) changing accounts' quotas. `accounts` tells which
    accounts exist (the server's authenticator): an override for a name nobody can
    authenticate as would be dead weight, so it is NotFound."""

    def __init__(
        self, store: QuotaStore, defaults: Quotas, accounts: StandingCheck, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self.defaults = defaults
        self._accounts = accounts
        self._clock = clock

    async def in_force(self, account: str) -> AccountQuotas:
        """The account's overrides and limits in force (no permission check: the
        server's own use, and the caller's own account)."""
        override = await self._store.get_quota(account)
        queued, running = override.effective(
            self.defaults.max_queued_per_account, self.defaults.max_running_per_account
        )
        return AccountQuotas(account, override, queued, running)

    async def max_queued(self, account: str) -> int:
        """The account's limit of WAITING + QUEUED jobs; 0: none."""
        return (await self.in_force(account)).max_queued

    async def get(self, caller: Principal, account: str) -> AccountQuotas:
        """Any account's quotas for the admin, one's own for anyone (an empty `account`:
        the caller's). Raises PermissionDenied, NotFound for an unknown account."""
        account = account or caller.account
        if account != caller.account:
            self._admin(caller, "see another account's quotas")
            await self._existing(account)
        return await self.in_force(account)

    async def set(
        self, caller: Principal, account: str, max_queued: int | None, max_running: int | None
    ) -> AccountQuotas:
        """Replace the account's overrides (None: the default again; both None clears
        them). The admin only. Raises PermissionDenied, InvalidArgument for a missing
        account name or a negative or absurd limit, NotFound for an unknown account."""
        self._admin(caller, "set quotas")
        queued = _checked("max_queued", max_queued, MAX_QUEUED_LIMIT)
        running = _checked("max_running", max_running, MAX_RUNNING_LIMIT)
        if not account.strip():
            raise InvalidArgument("account: name the account whose quotas to set")
        await self._existing(account)
        await self._store.set_quota(account, queued, running, self._clock())
        return await self.in_force(account)

    async def list_all(self, caller: Principal) -> list[AccountQuotas]:
        """Every account that has an override, by name. The admin only."""
        self._admin(caller, "list quotas")
        found = []
        for override in await self._store.list_quotas():
            queued, running = override.effective(
                self.defaults.max_queued_per_account, self.defaults.max_running_per_account
            )
            found.append(AccountQuotas(override.account, override, queued, running))
        return found

    async def forget(self, account: str) -> bool:
        """Remove a deleted account's overrides; whether it had any."""
        return await self._store.delete_quota(account)

    async def overridden_accounts(self) -> list[str]:
        """The accounts that have an override (for the deleted-account sweep)."""
        return [quota.account for quota in await self._store.list_quotas()]

    @staticmethod
    def _admin(caller: Principal, what: str) -> None:
        if not caller.admin:
            raise PermissionDenied(f"only the admin account may {what}")

    async def _existing(self, account: str) -> None:
        if len(account) > MAX_ACCOUNT_NAME:
            raise InvalidArgument(f"account: at most {MAX_ACCOUNT_NAME} characters")
        if await self._accounts.standing(account) in (None, Standing.GONE):
            raise NotFound(f"account {account} not found")
