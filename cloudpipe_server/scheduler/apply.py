"""Applying one file of saved jobs and schedules (`cloudpipe apply`) all or nothing.

Every entry is checked by the rules of Create and Update (names, job templates, cron,
time zones, the saved job a schedule runs: one of this request is checked against the
request's entry and the version it will store, not the store), every problem reported
at once (InvalidArgument listing them); then the cursors are computed as create and
update compute them, and the whole change set goes to the store in one call
(`ScheduleStore.apply_changes`), which checks the client's preconditions in the same
transaction as the writes."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import FailedPrecondition, InvalidArgument, NotFound
from cloudpipe_server.scheduler.models import SavedJob, SavedJobWrite, Schedule, ScheduleSpec, ScheduleWrite
from cloudpipe_server.scheduler.service import ScheduleService, cursor_after, template, updated_cursor, validate_name
from cloudpipe_server.store.base import ScheduleStore

log = logging.getLogger(__name__)

MAX_APPLY_ENTRIES = 1000


@dataclass(frozen=True)
class ScheduleEntry:
    """A schedule of one apply: `expected_updated_at` None, it must not exist yet;
    otherwise it must still have that `updated_at`."""

    spec: ScheduleSpec
    expected_updated_at: datetime | None = None


class ApplyService:
    """Apply a whole change set of the caller's saved jobs and schedules, atomically.
    `schedules` is the ScheduleService whose validation the entries go through; `wake`
    tells the local firing loop that something changed."""

    def __init__(
        self,
        store: ScheduleStore,
        schedules: ScheduleService,
        clock: Callable[[], datetime],
        *,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._schedules = schedules
        self._clock = clock
        self._wake = wake

    async def apply(
        self, caller: Principal, saved_jobs: Sequence[SavedJobWrite], schedules: Sequence[ScheduleEntry]
    ) -> tuple[list[SavedJob], list[Schedule]]:
        """Store every entry or none. Raises InvalidArgument listing every invalid entry,
        FailedPrecondition naming an entry that changed since the client read it."""
        for field, entries in (("saved_jobs", saved_jobs), ("schedules", schedules)):
            if len(entries) > MAX_APPLY_ENTRIES:
                raise InvalidArgument(f"{field}: at most {MAX_APPLY_ENTRIES} entries, got {len(entries)}")
        problems: list[str] = []
        jobs = self._saved_jobs(saved_jobs, problems)
        declared = {job.name: job for job in saved_jobs}
        checked: list[ScheduleEntry] = []
        seen: set[str] = set()
        for entry in schedules:
            where = f"schedules.{entry.spec.name}"
            if entry.spec.name in seen:
                problems.append(f"{where}: named twice")
                continue
            seen.add(entry.spec.name)
            try:
                checked.append(replace(entry, spec=await self._schedule(caller, entry.spec, declared, jobs, where)))
            except (InvalidArgument, NotFound) as exc:
                problems.append(str(exc))
        if problems:
            count = len(problems)
            listed = "\n".join(f"  {problem}" for problem in problems)
            raise InvalidArgument(f"{count} problem{'s' if count > 1 else ''}; nothing was changed:\n{listed}")
        writes = [await self._write(caller, entry) for entry in checked]
        stored = await self._store.apply_changes(caller.account, list(jobs.values()), writes, self._clock())
        log.info("apply by %s: %d saved job(s), %d schedule(s)", caller.account, len(jobs), len(writes))
        if writes:
            self._wake()
        return stored

    @staticmethod
    def _saved_jobs(saved_jobs: Sequence[SavedJobWrite], problems: list[str]) -> dict[str, SavedJobWrite]:
        """The valid saved jobs, by name (in the request's order); problems appended."""
        valid: dict[str, SavedJobWrite] = {}
        seen: set[str] = set()
        for job in saved_jobs:
            where = f"saved_jobs.{job.name}"
            if job.name in seen:
                problems.append(f"{where}: named twice")
                continue
            seen.add(job.name)
            try:
                validate_name(job.name, f"{where}.name")
                valid[job.name] = replace(job, spec=template(job.spec, f"{where}.spec"))
            except InvalidArgument as exc:
                problems.append(str(exc))
        return valid

    async def _schedule(
        self,
        caller: Principal,
        spec: ScheduleSpec,
        declared: dict[str, SavedJobWrite],
        valid: dict[str, SavedJobWrite],
        where: str,
    ) -> ScheduleSpec:
        """The spec as it will be stored; a saved job of this request is checked against
        its entry (and the version the apply stores), not the store."""
        prefix = f"{where}."
        if not spec.saved_job or spec.saved_job not in declared:
            return await self._schedules.validate(caller, spec, prefix)
        job = valid.get(spec.saved_job)
        if job is None:  # the saved job's own problem is reported already
            raise InvalidArgument(f"{prefix}saved_job: saved job {spec.saved_job!r} of this apply is invalid")
        version = job.expected_version + 1
        if spec.saved_job_version > version:
            raise InvalidArgument(
                f"{prefix}saved_job_version: saved job {spec.saved_job!r} will be at version {version} after this"
                f" apply, not {spec.saved_job_version}"
            )
        inline = replace(spec, saved_job="", saved_job_version=0, job=job.spec)
        checked = await self._schedules.validate(caller, inline, prefix)
        return replace(checked, saved_job=spec.saved_job, saved_job_version=spec.saved_job_version, job=None)

    async def _write(self, caller: Principal, entry: ScheduleEntry) -> ScheduleWrite:
        """The store write of a checked entry, its cursor computed as create and update
        compute it (an update's from the schedule as stored now; the store checks that it
        is still the one the client read)."""
        spec, now = entry.spec, self._clock()
        if entry.expected_updated_at is None:
            schedule_id = secrets.token_hex(8)
            cursor = cursor_after(schedule_id, spec, now)
            return ScheduleWrite(Schedule(schedule_id, caller.account, spec, now, now, *(cursor or (None, None))))
        try:
            current = await self._store.get_schedule(caller.account, spec.name)
        except NotFound:
            raise FailedPrecondition(
                f"schedules.{spec.name}: changed since it was read (it was deleted meanwhile); nothing was written"
            ) from None
        cursor = updated_cursor(current, spec, now)
        schedule = replace(current, spec=spec, next_fire_at=cursor and cursor[0], next_due_at=cursor and cursor[1])
        return ScheduleWrite(schedule, entry.expected_updated_at)
