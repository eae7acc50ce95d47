"""Business rules of saved jobs and schedules, shared by the gRPC servicers (and any
other front end). Every call is scoped to the caller's account."""

from __future__ import annotations

import logging
import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import FailedPrecondition, InvalidArgument
from cloudpipe_server.jobs.service import validate_spec
from cloudpipe_server.models import JobSpec, Resources
from cloudpipe_server.scheduler.cron import MAX_JITTER, CronExpression, Timing, check_instant
from cloudpipe_server.scheduler.firing import Firer, JobsPort
from cloudpipe_server.scheduler.loop import settle_runs
from cloudpipe_server.scheduler.models import (
    CatchupPolicy,
    Fire,
    FireOutcome,
    RunOverrides,
    SavedJob,
    Schedule,
    ScheduleSpec,
)
from cloudpipe_server.scheduler.policies import MAX_CATCHUP_WINDOW
from cloudpipe_server.store.base import ScheduleStore

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_PREVIEW = 1000
MAX_HISTORY = 1000


def validate_name(name: str, where: str = "name") -> str:
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"{where}: {name!r} is not a valid name: 1-128 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit"
        )
    return name


def template(spec: JobSpec, where: str) -> JobSpec:
    """A job spec fit to be run again and again."""
    validate_spec(spec, where)
    if spec.idempotency_key:
        raise InvalidArgument(f"{where}.idempotency_key: a saved or scheduled job cannot carry one; runs get their own")
    if spec.depends_on:
        raise InvalidArgument(f"{where}.depends_on: a saved or scheduled job cannot depend on other jobs")
    return replace(spec, saved_job="", saved_job_version=0, schedule_id="")


def cursor_after(schedule_id: str, spec: ScheduleSpec, after: datetime) -> tuple[datetime, datetime] | None:
    """The first (fire, due) time of a schedule after `after`, None when it has ended."""
    cron = CronExpression(spec.cron, spec.timezone)
    return Timing(schedule_id, cron, spec.jitter, spec.start_at, spec.end_at).next_after(after)


def updated_cursor(current: Schedule, spec: ScheduleSpec, now: datetime) -> tuple[datetime, datetime] | None:
    """The cursor of `current` once its spec is `spec`: kept when the timing is the same
    (and it is not paused), else the first time after now."""
    timing = (spec.cron, spec.timezone, spec.jitter, spec.start_at, spec.end_at)
    old = current.spec
    if timing == (old.cron, old.timezone, old.jitter, old.start_at, old.end_at) and not current.paused:
        return current.cursor
    return cursor_after(current.id, spec, now)


def apply_overrides(saved: SavedJob, overrides: RunOverrides) -> JobSpec:
    """The spec of one run of `saved` with `overrides` applied."""
    spec = saved.spec
    cmd = spec.cmd
    if overrides.args:
        if saved.is_function:
            raise InvalidArgument(
                f"overrides.args: saved job {saved.name!r} is a Python function: its arguments travel pickled in"
                " stdin (the SDK's saved_jobs.run(name, args=...) does that)"
            )
        cmd = f"{cmd} {shlex.join(overrides.args)}"
    resources = Resources(
        cpus=overrides.cpus or spec.resources.cpus,
        memory_bytes=overrides.memory_bytes or spec.resources.memory_bytes,
        pids=overrides.pids or spec.resources.pids,
    )
    return replace(
        spec,
        cmd=cmd,
        stdin=spec.stdin if overrides.stdin is None else overrides.stdin,
        env={**spec.env, **overrides.env},
        image=overrides.image or spec.image,
        resources=resources,
        max_runtime=overrides.max_runtime or spec.max_runtime,
        saved_job=saved.name,
        saved_job_version=saved.version,
    )


class SavedJobService:
    """Create, version, read, delete and run saved jobs."""

    def __init__(self, store: ScheduleStore, jobs: JobsPort, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._jobs = jobs
        self._clock = clock

    async def create(self, caller: Principal, name: str, spec: JobSpec, description: str = "") -> SavedJob:
        saved = await self._store.create_saved_job(
            caller.account, validate_name(name), template(spec, "spec"), description, self._clock()
        )
        log.info("saved job %r v1 created by %s", name, caller.account)
        return saved

    async def update(self, caller: Principal, name: str, spec: JobSpec, description: str = "") -> SavedJob:
        saved = await self._store.update_saved_job(
            caller.account, validate_name(name), template(spec, "spec"), description, self._clock()
        )
        log.info("saved job %r v%d stored by %s", name, saved.version, caller.account)
        return saved

    async def get(self, caller: Principal, name: str, version: int = 0) -> SavedJob:
        return await self._store.get_saved_job(caller.account, validate_name(name), version)

    async def list_all(self, caller: Principal) -> list[SavedJob]:
        return await self._store.list_saved_jobs(caller.account)

    async def delete(self, caller: Principal, name: str) -> None:
        users = await self._store.schedules_using(caller.account, validate_name(name))
        if users:
            raise FailedPrecondition(
                f"name: saved job {name!r} is run by schedule(s) {', '.join(users)}; delete or change them first"
            )
        await self._store.delete_saved_job(caller.account, name)

    async def run(
        self, caller: Principal, name: str, version: int = 0, overrides: RunOverrides | None = None, key: str = ""
    ) -> tuple[int, int]:
        """Submit one run; returns (job id, the version that ran)."""
        saved = await self.get(caller, name, version)
        spec = replace(apply_overrides(saved, overrides or RunOverrides()), idempotency_key=key)
        [job_id] = await self._jobs.submit(caller.account, [spec])
        return job_id, saved.version


@dataclass(frozen=True)
class ScheduleView:
    """A schedule with its latest fire, as `ls` shows it."""

    schedule: Schedule
    last_fire: Fire | None


class ScheduleService:
    """Create, change, inspect and trigger schedules. `wake` tells the local firing
    loop that something changed."""

    def __init__(
        self,
        store: ScheduleStore,
        jobs: JobsPort,
        clock: Callable[[], datetime],
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._clock = clock
        self._wake = wake
        self._firer = Firer(store, jobs, clock)

    async def validate(self, caller: Principal, spec: ScheduleSpec, prefix: str = "") -> ScheduleSpec:
        """The spec if it can be stored, else InvalidArgument / NotFound naming the field."""
        validate_name(spec.name, f"{prefix}name")
        CronExpression(spec.cron, spec.timezone, prefix=prefix)
        if bool(spec.saved_job) == (spec.job is not None):
            raise InvalidArgument(f"{prefix}target: name exactly one of saved_job and job")
        if spec.saved_job:
            validate_name(spec.saved_job, f"{prefix}saved_job")
            await self._store.get_saved_job(caller.account, spec.saved_job, spec.saved_job_version)
        elif spec.saved_job_version:
            raise InvalidArgument(f"{prefix}saved_job_version: only with saved_job")
        job = template(spec.job, f"{prefix}job") if spec.job is not None else None
        if not timedelta(0) <= spec.jitter <= MAX_JITTER:
            raise InvalidArgument(f"{prefix}jitter: must be between 0 and {MAX_JITTER}")
        check_instant(spec.start_at, f"{prefix}start_at")
        check_instant(spec.end_at, f"{prefix}end_at")
        if spec.start_at and spec.end_at and spec.end_at <= spec.start_at:
            raise InvalidArgument(f"{prefix}end_at: must be after start_at")
        if spec.catchup is CatchupPolicy.RUN_ALL and spec.catchup_window <= timedelta(0):
            raise InvalidArgument(f"{prefix}catchup_window: run_all needs a positive window")
        if spec.catchup_window > MAX_CATCHUP_WINDOW:
            raise InvalidArgument(f"{prefix}catchup_window: at most {MAX_CATCHUP_WINDOW.days} days")
        return replace(spec, job=job, timezone=spec.timezone or "UTC")

    async def create(self, caller: Principal, spec: ScheduleSpec) -> Schedule:
        spec = await self.validate(caller, spec, "spec.")
        now = self._clock()
        schedule_id = secrets.token_hex(8)
        cursor = cursor_after(schedule_id, spec, now)
        schedule = await self._store.create_schedule(
            Schedule(schedule_id, caller.account, spec, now, now, *(cursor or (None, None)))
        )
        log.info("schedule %s (%s) created by %s; first fire %s", schedule_id, spec.name, caller.account, cursor)
        self._wake()
        return schedule

    async def update(self, caller: Principal, name: str, spec: ScheduleSpec) -> Schedule:
        current = await self._store.get_schedule(caller.account, validate_name(name))
        spec = await self.validate(caller, spec, "spec.")
        cursor = updated_cursor(current, spec, self._clock())
        schedule = await self._store.update_schedule(caller.account, name, spec, cursor, self._clock())
        self._wake()
        return schedule

    async def get(self, caller: Principal, name: str) -> ScheduleView:
        schedule = await self._store.get_schedule(caller.account, validate_name(name))
        return ScheduleView(schedule, await self._last_fire(schedule))

    async def list_all(self, caller: Principal) -> list[ScheduleView]:
        return [ScheduleView(s, await self._last_fire(s)) for s in await self._store.list_schedules(caller.account)]

    async def delete(self, caller: Principal, name: str) -> None:
        await self._store.delete_schedule(caller.account, validate_name(name))
        log.info("schedule %r deleted by %s", name, caller.account)

    async def pause(self, caller: Principal, name: str) -> Schedule:
        current = await self._store.get_schedule(caller.account, validate_name(name))
        return await self._store.set_paused(caller.account, name, True, current.cursor, self._clock())

    async def resume(self, caller: Principal, name: str) -> Schedule:
        """Fires that fell in the pause are not caught up: the cursor restarts from now."""
        current = await self._store.get_schedule(caller.account, validate_name(name))
        now = self._clock()
        schedule = await self._store.set_paused(
            caller.account, name, False, cursor_after(current.id, current.spec, now), now
        )
        self._wake()
        return schedule

    async def trigger(self, caller: Principal, name: str) -> Fire:
        """Fire now, outside the cron times and regardless of the overlap policy."""
        schedule = await self._store.get_schedule(caller.account, validate_name(name))
        now = self._clock()
        fire = Fire(schedule.id, now, caller.account, now, now, FireOutcome.PENDING, reason="triggered", manual=True)
        if not await self._store.add_fire(fire):
            raise FailedPrecondition(f"name: schedule {name!r} was triggered at this very instant already")
        [fired] = await self._firer.submit([(fire, schedule)])
        return fired

    async def preview(
        self, caller: Principal, spec: ScheduleSpec, count: int, after: datetime | None = None, schedule_id: str = ""
    ) -> list[tuple[datetime, datetime]]:
        """The next `count` (scheduled, due) times of a spec (stored or not)."""
        if not 0 < count <= MAX_PREVIEW:
            raise InvalidArgument(f"count: between 1 and {MAX_PREVIEW}, got {count}")
        check_instant(after, "after")
        cron = CronExpression(spec.cron, spec.timezone)
        timing = Timing(schedule_id or "preview", cron, spec.jitter, spec.start_at, spec.end_at)
        return timing.preview(after or self._clock(), count)

    async def history(
        self, caller: Principal, name: str, limit: int = 20, before: datetime | None = None
    ) -> list[Fire]:
        """Fires, newest first, with the current status of their jobs."""
        if not 0 < limit <= MAX_HISTORY:
            raise InvalidArgument(f"limit: between 1 and {MAX_HISTORY}, got {limit}")
        check_instant(before, "before")
        schedule = await self._store.get_schedule(caller.account, validate_name(name))
        return await self._with_job_status(await self._store.fires(schedule.id, limit, before))

    async def _last_fire(self, schedule: Schedule) -> Fire | None:
        fires = await self._with_job_status(await self._store.fires(schedule.id, 1))
        return fires[0] if fires else None

    async def _with_job_status(self, fires: list[Fire]) -> list[Fire]:
        return await settle_runs(self._store, self._jobs, fires)
