"""Turning recorded fires into jobs, shared by the firing loop and manual triggers.

A fire is recorded (PENDING) before its job is submitted, and the job carries the
idempotency key `schedule:<id>:<scheduled time>`: a submit repeated after a crash, or
by a second server completing the fire, returns the job the first submit created.
Then the job id is attached to the fire (PENDING -> RUNNING).

Nobody is calling when a schedule fires, so before submitting in an account's name the
firer asks whether the account still stands (`StandingCheck`, the server's
authenticator): a deleted account's fires FAIL and its schedules are paused (its name
can never come back, see the auth service), a disabled account's fires FAIL, and while
that cannot be told (the auth service is down) they stay PENDING for a later pass.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from cloudpipe_common.logs import job_fields
from cloudpipe_server.auth.base import Principal, Standing, StandingCheck
from cloudpipe_server.errors import CloudpipeError, InvalidArgument, NotFound, Unavailable
from cloudpipe_server.jobs.service import JobService
from cloudpipe_server.models import JobSpec, JobStatus
from cloudpipe_server.scheduler.models import Fire, FireOutcome, SavedJob, Schedule
from cloudpipe_server.store.base import OutcomeChange, ScheduleStore

log = logging.getLogger(__name__)


class JobsPort(Protocol):
    """What the scheduler needs of jobs (the job service, in the server)."""

    async def submit(self, account: str, specs: Sequence[JobSpec]) -> list[int]:
        """Submit atomically; ids in order. Raises CloudpipeError."""

    async def statuses(self, account: str, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        """The status of each of these jobs that exists."""

    async def kill(self, account: str, job_id: int) -> None:
        """Kill a job (a finished one is left as it is)."""


class ServiceJobs:
    """`JobsPort` over the job service: the scheduler's jobs pass the same rules
    (validation, quotas) as anyone's."""

    def __init__(self, service: JobService) -> None:
        self._service = service

    async def submit(self, account: str, specs: Sequence[JobSpec]) -> list[int]:
        return await self._service.submit(Principal(account), specs)

    async def statuses(self, account: str, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        return await self._service.statuses(Principal(account), job_ids)

    async def kill(self, account: str, job_id: int) -> None:
        try:
            await self._service.kill(Principal(account), job_id)
        except NotFound:
            pass


def idempotency_key(fire: Fire) -> str:
    return f"schedule:{fire.schedule_id}:{fire.scheduled_at.astimezone(UTC).isoformat()}"


def fire_spec(schedule: Schedule, fire: Fire, saved: SavedJob | None) -> JobSpec:
    """The job of one fire: the saved job's spec (or the inline one), marked with where
    it came from and keyed by the fire."""
    marks: dict[str, object] = {"idempotency_key": idempotency_key(fire), "schedule_id": schedule.id}
    if saved is not None:
        base = saved.spec
        marks.update(saved_job=saved.name, saved_job_version=saved.version)
    elif schedule.spec.job is not None:
        base = schedule.spec.job
    else:
        raise InvalidArgument(f"schedule {schedule.name!r} names no job")
    return replace(base, name=base.name or schedule.name, **marks)  # type: ignore[arg-type]


class Firer:
    """Submits the jobs of PENDING fires and attaches their ids."""

    def __init__(
        self,
        store: ScheduleStore,
        jobs: JobsPort,
        clock: Callable[[], datetime],
        accounts: StandingCheck | None = None,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._clock = clock
        self._accounts = accounts  # None: every account stands (tests, benchmarks)

    async def submit(self, fires: Sequence[tuple[Fire, Schedule]]) -> list[Fire]:
        """Submit the jobs of these PENDING fires, batched per account. Fires whose job
        cannot be made (saved job deleted, invalid spec) become FAILED; on a store or
        quota error they stay PENDING for a later pass. Returns the fires as they are
        now."""
        if not fires:
            return []
        specs: dict[tuple[str, datetime], JobSpec] = {}
        changes: dict[tuple[str, datetime], OutcomeChange] = {}
        saved_cache: dict[tuple[str, str, int], SavedJob | CloudpipeError] = {}
        for fire, schedule in fires:
            key = (fire.schedule_id, fire.scheduled_at)
            try:
                saved = await self._saved(schedule, saved_cache)
                specs[key] = fire_spec(schedule, fire, saved)
            except (InvalidArgument, NotFound) as exc:
                changes[key] = _failed(fire, str(exc))
        by_account: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
        for fire, _ in fires:
            if (fire.schedule_id, fire.scheduled_at) in specs:
                by_account[fire.account].append((fire.schedule_id, fire.scheduled_at))
        for account, keys in by_account.items():
            standing = await self._standing(account)
            if standing is Standing.ACTIVE:
                changes.update(await self._submit_account(account, keys, specs))
            elif standing is not None:
                reason = f"account {account} " + ("is disabled" if standing is Standing.DISABLED else "was deleted")
                changes.update({key: _failed_key(key, reason) for key in keys})
                if standing is Standing.GONE:
                    await self._pause([s for f, s in fires if f.account == account])
        ordered = [changes[k] for k in ((f.schedule_id, f.scheduled_at) for f, _ in fires) if k in changes]
        applied = await self._store.set_fire_outcomes(ordered)
        done = {(c.schedule_id, c.scheduled_at): c for c, ok in zip(ordered, applied, strict=True) if ok}
        result = []
        for fire, _ in fires:
            change = done.get((fire.schedule_id, fire.scheduled_at))
            if change is None:
                result.append(fire)
            else:
                reason = fire.reason if change.reason is None else change.reason
                result.append(replace(fire, outcome=change.outcome, job_id=change.job_id, reason=reason))
        return result

    async def _standing(self, account: str) -> Standing | None:
        """Where the account stands; None when that cannot be told now (its fires stay
        pending for a later pass)."""
        if self._accounts is None:
            return Standing.ACTIVE
        try:
            standing = await self._accounts.standing(account)
        except Unavailable as exc:
            log.warning(
                "schedule fires of account %s stay pending, its standing is unknown: %s",
                account,
                exc,
                extra={"account": account},
            )
            return None
        return Standing.ACTIVE if standing is None else standing

    async def _pause(self, schedules: Sequence[Schedule]) -> None:
        """Pause the schedules of a deleted account (once each; already gone is fine)."""
        now = self._clock()
        for schedule in {s.id: s for s in schedules}.values():
            try:
                await self._store.set_paused(schedule.account, schedule.name, True, schedule.cursor, now)
            except NotFound:
                continue
            log.warning("schedule %s (%s) paused: its account was deleted", schedule.id, schedule.name)

    async def _submit_account(
        self, account: str, keys: list[tuple[str, datetime]], specs: dict[tuple[str, datetime], JobSpec]
    ) -> dict[tuple[str, datetime], OutcomeChange]:
        try:
            ids = await self._jobs.submit(account, [specs[k] for k in keys])
        except InvalidArgument as exc:
            if len(keys) == 1:
                return {keys[0]: OutcomeChange(*keys[0], FireOutcome.PENDING, FireOutcome.FAILED, reason=str(exc))}
            found: dict[tuple[str, datetime], OutcomeChange] = {}
            for key in keys:  # one bad spec fails a batch: submit one by one to tell which
                found.update(await self._submit_account(account, [key], specs))
            return found
        except CloudpipeError as exc:
            log.warning(
                "schedule fires of account %s stay pending, submit failed: %s", account, exc, extra={"account": account}
            )
            return {}
        for key, job_id in zip(keys, ids, strict=True):
            log.info(
                "schedule %s: fire at %s submitted job %d",
                key[0],
                key[1].isoformat(),
                job_id,
                extra=job_fields(job_id, account),
            )
        return {
            key: OutcomeChange(*key, FireOutcome.PENDING, FireOutcome.RUNNING, job_id=job_id)
            for key, job_id in zip(keys, ids, strict=True)
        }

    async def _saved(
        self, schedule: Schedule, cache: dict[tuple[str, str, int], SavedJob | CloudpipeError]
    ) -> SavedJob | None:
        name, version = schedule.spec.saved_job, schedule.spec.saved_job_version
        if not name:
            return None
        key = (schedule.account, name, version)
        if key not in cache:
            try:
                cache[key] = await self._store.get_saved_job(schedule.account, name, version)
            except NotFound as exc:
                cache[key] = exc
        found = cache[key]
        if isinstance(found, CloudpipeError):
            raise found
        return found


def _failed_key(key: tuple[str, datetime], reason: str) -> OutcomeChange:
    return OutcomeChange(*key, FireOutcome.PENDING, FireOutcome.FAILED, reason=reason)


def _failed(fire: Fire, reason: str) -> OutcomeChange:
    return OutcomeChange(fire.schedule_id, fire.scheduled_at, FireOutcome.PENDING, FireOutcome.FAILED, reason=reason)
