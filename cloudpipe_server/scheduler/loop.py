"""The firing loop: every server runs one against the shared schedule store.

A pass claims the due schedules with a lease (`ScheduleStore.claim_due`), decides
their fires (catch-up, then overlap policy), records them and moves each cursor in
one step (`record_fires`, only while the lease holds), then submits the jobs of the
fires that run and attaches the job ids. Between passes the loop sleeps until the
earliest due time, at most `interval` (schedules changed through another server are
seen within that), and is woken at once by local changes. Deciding the fires is done in
a worker thread, at most `max_fires_per_pass` of them per pass (a long catch-up goes on
in the next passes), so the event loop stays free.

A housekeeping step, at most once per `interval`, finishes what a crash left behind
and follows the runs: PENDING fires older than a lease are submitted again (same
idempotency key, so never twice), RUNNING fires whose job ended become FINISHED, and a
BUFFERED fire is released once its schedule has no unfinished run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import chain

from cloudpipe_common.logs import job_fields
from cloudpipe_common.waiting import wait_set
from cloudpipe_server.auth.base import StandingCheck
from cloudpipe_server.errors import CloudpipeError
from cloudpipe_server.scheduler.cron import Timing, cron_expression
from cloudpipe_server.scheduler.firing import Firer, JobsPort
from cloudpipe_server.scheduler.models import Fire, FireOutcome, OverlapPolicy, Schedule
from cloudpipe_server.scheduler.policies import Decision, is_missed, plan_catchup, plan_overlap
from cloudpipe_server.store.base import FireRecord, OutcomeChange, ScheduleStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerConfig:
    owner: str
    interval: float = 1.0  # longest sleep between passes, and the housekeeping period
    lease_seconds: float = 30.0
    misfire_grace: float = 10.0  # a fire found later than this after its due time is missed
    batch: int = 1000  # schedules claimed per pass
    max_fires_per_schedule: int = 1000  # fires one pass decides for one schedule
    max_fires_per_pass: int = 10_000  # fires one pass decides in all; the rest wait for the next pass


def timing_of(schedule: Schedule) -> Timing:
    spec = schedule.spec
    return Timing(schedule.id, cron_expression(spec.cron, spec.timezone), spec.jitter, spec.start_at, spec.end_at)


def due_fires(
    schedule: Schedule, now: datetime, grace: timedelta, limit: int
) -> tuple[list[tuple[datetime, datetime]], tuple[datetime, datetime] | None, bool]:
    """The (scheduled, due) fires of `schedule` due by `now` from its cursor on (at most
    `limit`), the new cursor, and whether missed fires beyond the limit follow."""
    cursor = schedule.cursor
    if cursor is None:
        return [], None, False
    found: list[tuple[datetime, datetime]] = []
    for pair in chain([cursor], timing_of(schedule).fires(cursor[0])):
        if pair[1] > now:
            return found, pair, False
        if len(found) == limit:
            return found, pair, is_missed(pair[1], now, grace)
        found.append(pair)
    return found, None, False


Plan = tuple[Schedule, list[Decision], tuple[datetime, datetime] | None]


def plan_pass(
    claimed: Sequence[Schedule], now: datetime, grace: timedelta, per_schedule: int, budget: int
) -> list[Plan]:
    """The catch-up decisions and new cursor of each claimed schedule: at most
    `per_schedule` fires for one schedule and `budget` in all. A schedule left without
    budget keeps its cursor (recording it only releases the lease), so its fires are
    decided by a later pass: none is lost, none decided twice. A schedule that cannot be
    planned (a zone that left the tz database, a value stored before it was validated)
    is logged and left out; the others go on. Pure CPU work: the loop runs it in a
    worker thread."""
    planned: list[Plan] = []
    for schedule in claimed:
        try:
            limit = min(per_schedule, budget)
            fires, cursor, more = due_fires(schedule, now, grace, limit)
            spec = schedule.spec
            decisions = plan_catchup(
                fires, now, grace=grace, policy=spec.catchup, window=spec.catchup_window, more_missed_follow=more
            )
        except Exception:
            log.exception("schedule %s (%s): cannot plan its fires, skipped", schedule.id, schedule.name)
            continue
        budget -= len(fires)
        planned.append((schedule, decisions, cursor))
    return planned


async def settle_runs(store: ScheduleStore, jobs: JobsPort, fires: Sequence[Fire]) -> list[Fire]:
    """The fires as they are now, with the current status of their jobs; the one rule for
    a RUNNING fire (the firing loop and `ScheduleService` both follow it): its job ended
    -> FINISHED with the job's status; its job no longer exists -> FINISHED with job
    status "deleted" and a reason saying so (otherwise it would block its schedule's
    overlap policy forever); else it stays RUNNING. The changes are stored
    (compare-and-set: a concurrent settle of the same fire does the same)."""
    by_account: dict[str, list[int]] = defaultdict(list)
    for fire in fires:
        if fire.outcome is FireOutcome.RUNNING and fire.job_id is not None:
            by_account[fire.account].append(fire.job_id)
    statuses = {}
    for account, ids in by_account.items():
        statuses.update({(account, k): v for k, v in (await jobs.statuses(account, ids)).items()})
    changes, result = [], []
    for fire in fires:
        if fire.outcome is FireOutcome.RUNNING and fire.job_id is not None:
            status = statuses.get((fire.account, fire.job_id))
            if status is None:
                reason = f"job {fire.job_id} no longer exists"
                fire = replace(fire, outcome=FireOutcome.FINISHED, job_status="deleted", reason=reason)
                changes.append(_finished(fire, reason))
            elif status.terminal:
                fire = replace(fire, outcome=FireOutcome.FINISHED, job_status=status.value)
                changes.append(_finished(fire))
            else:
                fire = replace(fire, job_status=status.value)
        result.append(fire)
    await store.set_fire_outcomes(changes)
    return result


def _finished(fire: Fire, reason: str | None = None) -> OutcomeChange:
    return OutcomeChange(
        fire.schedule_id, fire.scheduled_at, FireOutcome.RUNNING, FireOutcome.FINISHED, None, fire.job_status, reason
    )


class Scheduler:
    """Fires due schedules until stopped. `run_pass` and `housekeeping` are public so
    tests and benchmarks can drive them with a fake clock."""

    def __init__(
        self,
        store: ScheduleStore,
        jobs: JobsPort,
        config: SchedulerConfig,
        clock: Callable[[], datetime],
        firer: Firer | None = None,
        *,
        on_fire: Callable[[Fire, datetime], None] | None = None,
        accounts: StandingCheck | None = None,
    ) -> None:
        self._store = store
        self._on_fire = on_fire  # each recorded fire and the time of the pass (metrics)
        self._jobs = jobs
        self._config = config
        self._clock = clock
        self._firer = firer or Firer(store, jobs, clock, accounts)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_housekeeping = float("-inf")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler")

    def wake(self) -> None:
        """Run a pass now (a schedule was created or changed here)."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                while await self.run_pass() >= self._config.batch:
                    pass  # more schedules are due than one pass claims
                if time.monotonic() - self._last_housekeeping >= self._config.interval:
                    self._last_housekeeping = time.monotonic()
                    await self.housekeeping()
                delay = await self._delay()
            except CloudpipeError as exc:
                log.warning("scheduler pass failed, retrying: %s", exc)
                delay = self._config.interval
            except Exception:
                log.exception("scheduler pass failed, retrying")
                delay = self._config.interval
            self._wake.clear()
            await wait_set(self._wake, delay)

    async def _delay(self) -> float:
        due = await self._store.next_due_at()
        if due is None:
            return self._config.interval
        return min(max((due - self._clock()).total_seconds(), 0.0), self._config.interval)

    # -- a pass ------------------------------------------------------------------------

    async def run_pass(self) -> int:
        """Claim, decide, record and submit the due fires. Returns how many schedules
        were claimed."""
        config = self._config
        now = self._clock()
        grace = timedelta(seconds=config.misfire_grace)
        claimed = await self._store.claim_due(config.owner, now, timedelta(seconds=config.lease_seconds), config.batch)
        if not claimed:
            return 0
        # Catch-up after downtime can mean many fires (1,000 per-second schedules after an
        # hour: 10^6 without the budget): decided off the event loop, at most
        # `max_fires_per_pass` per pass.
        planned = await asyncio.to_thread(
            plan_pass, claimed, now, grace, config.max_fires_per_schedule, config.max_fires_per_pass
        )
        running, buffered = await self._runs_of([s for s, d, _ in planned if _needs_overlap_check(s, d)])
        records: list[FireRecord] = []
        kills: dict[str, tuple[int, ...]] = {}
        for schedule, decisions, cursor in planned:
            plan = plan_overlap(
                decisions, schedule.spec.overlap, running=running.get(schedule.id, ()), buffered=schedule.id in buffered
            )
            kills[schedule.id] = plan.kill
            records.append(FireRecord(schedule.id, [_fire(schedule, d, now) for d in plan.decisions], cursor))
        results = await self._store.record_fires(config.owner, records)
        to_submit: list[tuple[Fire, Schedule]] = []
        for (schedule, _, _), inserted in zip(planned, results, strict=True):
            if inserted is None:
                log.info(
                    "schedule %s (%s): lease lost, its fires are left to the next pass", schedule.id, schedule.name
                )
                continue
            if kills[schedule.id] and any(f.outcome is FireOutcome.PENDING for f in inserted):
                for job_id in kills[schedule.id]:
                    log.info(
                        "schedule %s: killing job %d (overlap: cancel_previous)",
                        schedule.id,
                        job_id,
                        extra=job_fields(job_id, schedule.account),
                    )
                    await self._jobs.kill(schedule.account, job_id)
            for fire in inserted:
                if self._on_fire is not None:
                    self._on_fire(fire, now)
                if fire.outcome is FireOutcome.PENDING:
                    to_submit.append((fire, schedule))
                elif fire.outcome is FireOutcome.SKIPPED:
                    log.info(
                        "schedule %s: fire at %s skipped: %s",
                        schedule.id,
                        fire.scheduled_at,
                        fire.reason,
                        extra={"account": schedule.account},
                    )
        await self._firer.submit(to_submit)
        return len(claimed)

    async def _runs_of(self, schedules: Sequence[Schedule]) -> tuple[dict[str, tuple[int, ...]], set[str]]:
        """Per schedule, the unfinished jobs of its fires; and the schedules with a
        buffered fire. Fires whose job ended are settled on the way."""
        if not schedules:
            return {}, set()
        fires = await self._store.open_fires([s.id for s in schedules])
        unfinished = await self._settle(fires)
        running: dict[str, list[int]] = defaultdict(list)
        for fire in unfinished:
            if fire.outcome is FireOutcome.RUNNING and fire.job_id is not None:
                running[fire.schedule_id].append(fire.job_id)
        buffered = {f.schedule_id for f in unfinished if f.outcome is FireOutcome.BUFFERED}
        return {k: tuple(v) for k, v in running.items()}, buffered

    async def _settle(self, fires: Sequence[Fire]) -> list[Fire]:
        """Settle the fires whose job ended; return the fires still open."""
        return [f for f in await settle_runs(self._store, self._jobs, fires) if f.outcome.open]

    # -- housekeeping ---------------------------------------------------------------------

    async def housekeeping(self) -> None:
        """Complete PENDING fires a crashed pass left, settle finished runs, release
        buffered fires whose schedule is idle."""
        now = self._clock()
        stale = now - timedelta(seconds=self._config.lease_seconds)
        open_fires = await self._settle(await self._store.open_fires())
        busy = {f.schedule_id for f in open_fires if f.outcome is FireOutcome.RUNNING}
        pending = [f for f in open_fires if f.outcome is FireOutcome.PENDING and f.recorded_at < stale]
        released = [f for f in open_fires if f.outcome is FireOutcome.BUFFERED and f.schedule_id not in busy]
        changes = [
            OutcomeChange(f.schedule_id, f.scheduled_at, FireOutcome.BUFFERED, FireOutcome.PENDING) for f in released
        ]
        applied = await self._store.set_fire_outcomes(changes)
        fires = pending + [f for f, ok in zip(released, applied, strict=True) if ok]
        if not fires:
            return
        schedules = await self._store.schedules_by_id(sorted({f.schedule_id for f in fires}))
        for fire in pending:
            log.info("schedule %s: completing the fire at %s left pending", fire.schedule_id, fire.scheduled_at)
        await self._firer.submit([(f, schedules[f.schedule_id]) for f in fires if f.schedule_id in schedules])


def _needs_overlap_check(schedule: Schedule, decisions: Sequence[Decision]) -> bool:
    return schedule.spec.overlap is not OverlapPolicy.ALLOW and any(d.outcome is FireOutcome.PENDING for d in decisions)


def _fire(schedule: Schedule, decision: Decision, now: datetime) -> Fire:
    return Fire(
        schedule_id=schedule.id,
        scheduled_at=decision.scheduled_at,
        account=schedule.account,
        due_at=decision.due_at,
        recorded_at=now,
        outcome=decision.outcome,
        reason=decision.reason,
    )
