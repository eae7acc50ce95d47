"""The sweep that stops a deleted account's work.

An account is deleted in the auth service, which tells no server. Every `interval`
seconds each server pages through the accounts with unfinished jobs
(`JobStore.unfinished_accounts`) and asks the authenticator where each stands; for one
that is GONE (deleted: its name can never authenticate again) it kills every unfinished
job (`JobStore.kill_all`: waiting and queued ones end KILLED at once, running ones are
stopped by the heartbeat of the server that runs them), pauses its schedules, which
otherwise stop only at their next fire, and removes its quota overrides. Then it does
the same for the accounts with quota overrides (`QuotaService`) but no unfinished jobs,
so a deleted account's overrides never outlive it. An account whose standing cannot be told now
(the auth service is down) is left for the next sweep; DISABLED accounts keep their
jobs (they may come back). The delay from a deletion to the kill is at most one
interval plus the authenticator's cache of active accounts (`CLOUDPIPE_AUTH_CACHE_TTL`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from cloudpipe_server.auth.base import Standing, StandingCheck
from cloudpipe_server.errors import CloudpipeError, NotFound, Unavailable
from cloudpipe_server.jobs.quotas import QuotaService
from cloudpipe_server.store.base import JobStore, ScheduleStore

log = logging.getLogger(__name__)

PAGE = 200


class DeletedAccounts:
    """Sweeps for deleted accounts' work every `interval` seconds while started."""

    def __init__(
        self,
        jobs: JobStore,
        schedules: ScheduleStore,
        accounts: StandingCheck,
        clock: Callable[[], datetime],
        interval: float,
        *,
        on_killed: Callable[[int], None] | None = None,
        quotas: QuotaService | None = None,
    ) -> None:
        """`on_killed(job_id)` is told of each job a sweep killed (its watchers wake);
        `quotas` loses a deleted account's overrides."""
        self._jobs = jobs
        self._schedules = schedules
        self._accounts = accounts
        self._clock = clock
        self._interval = interval
        self._on_killed = on_killed
        self._quotas = quotas
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cloudpipe-deleted-accounts")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except CloudpipeError as exc:
                log.warning("deleted-account sweep failed, retrying in %.0f s: %s", self._interval, exc)
            except Exception:
                log.exception("deleted-account sweep failed, retrying in %.0f s", self._interval)

    async def sweep(self) -> dict[str, list[int]]:
        """One pass over every account with unfinished jobs, then over those with quota
        overrides; the jobs killed, by account."""
        killed: dict[str, list[int]] = {}
        after = ""
        while True:
            page = await self._jobs.unfinished_accounts(after, PAGE)
            for account in page:
                if await self._gone(account):
                    killed[account] = await self.stop_account(account)
            if len(page) < PAGE:
                break
            after = page[-1]
        if self._quotas is not None:
            for account in await self._quotas.overridden_accounts():
                if account not in killed and await self._gone(account):
                    await self._forget_quotas(account)
        return killed

    async def stop_account(self, account: str) -> list[int]:
        """Kill the account's unfinished jobs, pause its schedules and remove its quota
        overrides; the jobs killed."""
        now = self._clock()
        ids = await self._jobs.kill_all(account, now)
        log.warning("account %s was deleted: kill requested for its %d unfinished job(s)", account, len(ids))
        on_killed = self._on_killed
        if on_killed is not None:
            for job_id in ids:
                on_killed(job_id)
        for schedule in await self._schedules.list_schedules(account):
            if schedule.paused:
                continue
            with contextlib.suppress(NotFound):  # deleted meanwhile
                await self._schedules.set_paused(account, schedule.name, True, schedule.cursor, now)
                log.warning("schedule %s (%s) paused: its account was deleted", schedule.id, schedule.name)
        await self._forget_quotas(account)
        return ids

    async def _forget_quotas(self, account: str) -> None:
        if self._quotas is not None and await self._quotas.forget(account):
            log.warning("account %s was deleted: its quota overrides were removed", account)

    async def _gone(self, account: str) -> bool:
        try:
            return await self._accounts.standing(account) is Standing.GONE
        except Unavailable as exc:
            log.info("account %s: standing unknown, checked again at the next sweep: %s", account, exc)
            return False
