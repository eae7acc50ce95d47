"""Usage for the overview: queue counts by status and jobs finished per minute over a
recent window, for the caller's account or (the admin only) every account, with the
per-account quotas (the caller's own limits in force; for every account, the server's
defaults). Two store reads whatever the number of jobs, and one of the quota store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import InvalidArgument, PermissionDenied
from cloudpipe_server.jobs.quotas import Quotas, QuotaService
from cloudpipe_server.models import JobStatus
from cloudpipe_server.store.base import JobStore

DEFAULT_WINDOW = 60
MAX_WINDOW = 1440
FAILED = frozenset({JobStatus.ERROR, JobStatus.KILLED, JobStatus.STALLED})


@dataclass(frozen=True)
class AccountUsage:
    account: str
    counts: dict[JobStatus, int]
    done: int = 0
    failed: int = 0
    runtime_ns: int = 0


@dataclass(frozen=True)
class Usage:
    window_start: datetime
    window_minutes: int
    counts: dict[JobStatus, int]
    done_per_minute: list[int]
    failed_per_minute: list[int]
    runtime_ns: int
    quotas: Quotas  # the caller's account's limits in force; with all_accounts, the defaults
    accounts: list[AccountUsage] = field(default_factory=list)  # with all_accounts only


def _empty() -> dict[JobStatus, int]:
    return {status: 0 for status in JobStatus}


class UsageService:
    def __init__(self, store: JobStore, clock: Callable[[], datetime], quotas: QuotaService) -> None:
        self._store = store
        self._clock = clock
        self._quotas = quotas

    async def usage(self, caller: Principal, *, all_accounts: bool = False, window_minutes: int = 0) -> Usage:
        """Raises PermissionDenied for `all_accounts` from anyone but the admin, and
        InvalidArgument for a window over MAX_WINDOW minutes."""
        if all_accounts and not caller.admin:
            raise PermissionDenied("only the admin account may see the usage of every account")
        window = window_minutes or DEFAULT_WINDOW
        if window > MAX_WINDOW:
            raise InvalidArgument(f"window_minutes: at most {MAX_WINDOW}")
        start = self._clock().replace(second=0, microsecond=0) - timedelta(minutes=window - 1)
        if all_accounts:
            per_account = await self._store.counts_by_account()
            finished = await self._store.finished_since(start)
            quotas = self._quotas.defaults
        else:
            per_account = {caller.account: await self._store.counts(caller.account)}
            finished = await self._store.finished_since(start, caller.account)
            mine = await self._quotas.in_force(caller.account)
            quotas = Quotas(mine.max_queued, mine.max_running)
        done, failed = [0] * window, [0] * window
        totals: dict[str, list[int]] = {}
        for row in finished:
            minute = min(max(row.minute, 0), window - 1)  # a clock a little ahead: the last minute
            (failed if row.status in FAILED else done)[minute] += row.count
            total = totals.setdefault(row.account, [0, 0, 0])
            total[1 if row.status in FAILED else 0] += row.count
            total[2] += row.runtime_ns
        return Usage(
            window_start=start,
            window_minutes=window,
            counts=_sum(per_account.values()),
            done_per_minute=done,
            failed_per_minute=failed,
            runtime_ns=sum(row.runtime_ns for row in finished),
            quotas=quotas,
            accounts=_accounts(per_account, totals) if all_accounts else [],
        )


def _sum(counts: Iterable[dict[JobStatus, int]]) -> dict[JobStatus, int]:
    total = _empty()
    for per in counts:
        for status, n in per.items():
            total[status] += n
    return total


def _accounts(per_account: dict[str, dict[JobStatus, int]], totals: dict[str, list[int]]) -> list[AccountUsage]:
    names = sorted(set(per_account) | set(totals))
    found = []
    for name in names:
        done, failed, runtime_ns = totals.get(name, [0, 0, 0])
        found.append(AccountUsage(name, per_account.get(name, _empty()), done, failed, runtime_ns))
    return found
