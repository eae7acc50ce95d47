"""The schedule store contract: saved jobs (with versions), schedules and their fires.
Every backend implements `ScheduleStore`; tests/contract/test_schedule_store.py runs
one suite against each. A backend opens its own connection (or pool) to the same URL
as the job store, so jobs and schedules live in one database.

Two guarantees carry the scheduler:

- A fire is identified by (schedule id, scheduled time) and recorded at most once,
  by a unique constraint, however many schedulers share the store.
- Deciding fires is leased: `claim_due` hands a due schedule to one scheduler at a
  time, and `record_fires` moves the schedule's cursor only while that lease holds. A
  scheduler that dies mid-pass loses its lease after `lease` and another takes over.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloudpipe_server.models import JobSpec
from cloudpipe_server.scheduler.models import Fire, FireOutcome, SavedJob, Schedule, ScheduleSpec


@dataclass(frozen=True)
class FireRecord:
    """The fires one pass decided for one schedule, and where its cursor moves."""

    schedule_id: str
    fires: Sequence[Fire]
    cursor: tuple[datetime, datetime] | None


@dataclass(frozen=True)
class OutcomeChange:
    """A compare-and-set of one fire's outcome (see `ScheduleStore.set_fire_outcomes`)."""

    schedule_id: str
    scheduled_at: datetime
    expected: FireOutcome
    outcome: FireOutcome
    job_id: int | None = None
    job_status: str = ""
    reason: str | None = None


class ScheduleStore(abc.ABC):
    """Durable storage of saved jobs and schedules. All methods are coroutines and safe
    to call concurrently. Names are unique per account; `account` arguments scope every
    lookup (another account's object is NotFound)."""

    @abc.abstractmethod
    async def initialize(self) -> None:
        """Create or migrate the schema. Idempotent; safe when servers start together."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    # -- saved jobs ----------------------------------------------------------------

    @abc.abstractmethod
    async def create_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        """Store version 1 of a new saved job. Raises AlreadyExists when the account has
        a saved job of that name (even under concurrent creates)."""

    @abc.abstractmethod
    async def update_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        """Store a new version (the latest + 1) and return it; older versions stay
        readable. Concurrent updates get distinct versions. Raises NotFound."""

    @abc.abstractmethod
    async def get_saved_job(self, account: str, name: str, version: int = 0) -> SavedJob:
        """The given version, or the latest when `version` is 0. Raises NotFound naming
        the saved job (and the version, when that is what is missing)."""

    @abc.abstractmethod
    async def list_saved_jobs(self, account: str) -> list[SavedJob]:
        """The latest version of each of the account's saved jobs, by name."""

    @abc.abstractmethod
    async def delete_saved_job(self, account: str, name: str) -> None:
        """Delete every version. Raises NotFound."""

    # -- schedules -----------------------------------------------------------------

    @abc.abstractmethod
    async def create_schedule(self, schedule: Schedule) -> Schedule:
        """Store a new schedule (its id, cursor and times given). Raises AlreadyExists
        when the account has a schedule of that name (even under concurrent creates)."""

    @abc.abstractmethod
    async def update_schedule(
        self,
        account: str,
        name: str,
        spec: ScheduleSpec,
        cursor: tuple[datetime, datetime] | None,
        now: datetime,
    ) -> Schedule:
        """Replace the spec (its name included: a rename) and the cursor
        ((next_fire_at, next_due_at), None when it has ended), set `updated_at`, and
        break any lease, so a pass deciding on the old spec records nothing. Raises
        NotFound, or AlreadyExists when renamed onto another schedule's name."""

    @abc.abstractmethod
    async def set_paused(
        self, account: str, name: str, paused: bool, cursor: tuple[datetime, datetime] | None, now: datetime
    ) -> Schedule:
        """Pause or resume, moving the cursor as given and breaking any lease. Raises
        NotFound."""

    @abc.abstractmethod
    async def get_schedule(self, account: str, name: str) -> Schedule:
        """Raises NotFound."""

    @abc.abstractmethod
    async def schedules_by_id(self, ids: Sequence[str]) -> dict[str, Schedule]:
        """The schedules with these ids (of any account) that exist, by id."""

    @abc.abstractmethod
    async def list_schedules(self, account: str) -> list[Schedule]:
        """The account's schedules, by name."""

    @abc.abstractmethod
    async def delete_schedule(self, account: str, name: str) -> None:
        """Delete the schedule and its fires. Raises NotFound."""

    @abc.abstractmethod
    async def schedules_using(self, account: str, saved_job: str) -> list[str]:
        """Names of the account's schedules that run the saved job `saved_job`."""

    # -- firing ---------------------------------------------------------------------

    @abc.abstractmethod
    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Schedule]:
        """Atomically lease to `owner` until `now + lease` up to `limit` unpaused
        schedules whose `next_due_at` is not after `now` and whose lease is free or
        expired, earliest due first. No schedule is leased to two owners at once."""

    @abc.abstractmethod
    async def record_fires(self, owner: str, records: Sequence[FireRecord]) -> list[list[Fire] | None]:
        """For each record (in order), if `owner` still holds the schedule's lease:
        insert its fires, set the cursor ((next_fire_at, next_due_at), None once the
        schedule has ended) and release the lease, atomically per record. The result
        holds, per record, the fires inserted, in order; a fire whose (schedule id,
        scheduled time) is recorded already is left as it is and not returned. It holds
        None, and nothing of that record is written, when the lease was lost (the
        schedule was updated, paused or deleted, or another owner took the expired
        lease)."""

    @abc.abstractmethod
    async def add_fire(self, fire: Fire) -> bool:
        """Insert one fire outside the cursor (a manual trigger). Returns False when
        (schedule id, scheduled time) is recorded already."""

    @abc.abstractmethod
    async def next_due_at(self) -> datetime | None:
        """The earliest `next_due_at` of unpaused schedules (leased or not), or None."""

    @abc.abstractmethod
    async def set_fire_outcomes(self, changes: Sequence[OutcomeChange]) -> list[bool]:
        """Compare-and-set each fire's outcome from `expected` to `outcome`, setting
        `job_id` when given, `job_status`, and `reason` unless None. Returns, per change,
        False (changing nothing) when the fire is missing or not in `expected`."""

    @abc.abstractmethod
    async def open_fires(self, schedule_ids: Sequence[str] | None = None, limit: int = 1000) -> list[Fire]:
        """PENDING, BUFFERED and RUNNING fires (of these schedules, or of all), oldest
        scheduled first, at most `limit`."""

    @abc.abstractmethod
    async def fires(self, schedule_id: str, limit: int = 100, before: datetime | None = None) -> list[Fire]:
        """The schedule's fires, newest scheduled first, only those scheduled before
        `before` when given, at most `limit`."""
