"""The storage contracts, `JobStore`, `ScheduleStore` and `SecretStore`, and `Stores`:
the three of them on one database. Every backend (`sqlite/`, `postgres/`, `mongodb/`)
implements them all on one database object it shares between them; tests/contract/ runs
one suite against each backend. Adding a backend: README.md beside this file.

Jobs. Claims are leases: a dispatcher owns a processing job only until `lease_expires_at`,
and must extend the lease while the job runs. A job whose lease ran out is recovered by
`reap_expired` (requeued when restartable, otherwise stalled), so no job stays
`processing` forever after a crash.

A lease is held by an owner for one attempt: a job can be reaped, requeued and claimed
again by the same owner while its first run still goes on. The lease holder's
operations (`append_output`, `extend_leases`, `mark_started`, `finish`) therefore take
the attempt they act for (the job's `attempts` as its claim returned it): given, the
operation applies only while the job's `attempts` still equals it, so a stale run
changes nothing; omitted (None), only the owner is checked.

Schedules: saved jobs (with versions), schedules and their fires, in the job store's
database. Two guarantees carry the scheduler:

- A fire is identified by (schedule id, scheduled time) and recorded at most once,
  by a unique constraint, however many schedulers share the store.
- Deciding fires is leased: `claim_due` hands a due schedule to one scheduler at a
  time, and `record_fires` moves the schedule's cursor only while that lease holds. A
  scheduler that dies mid-pass loses its lease after `lease` and another takes over.

Over 400 lines on purpose: this is the one file every backend is written against, so
the interfaces it implements stay together, and nearly half of it is the per-method
contracts (what is atomic, what it returns, what it raises).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cloudpipe_server.models import Attempt, Job, JobQuery, JobSpec, JobStatus, Outcome, OutputChunk, Stream
from cloudpipe_server.scheduler.models import (
    Fire,
    FireOutcome,
    SavedJob,
    SavedJobWrite,
    Schedule,
    ScheduleSpec,
    ScheduleWrite,
)


class JobStore(abc.ABC):
    """Durable storage of jobs. All methods are coroutines and safe to call concurrently."""

    @abc.abstractmethod
    async def initialize(self) -> None:
        """Connect the backend's database (unless the other store on it did already),
        then create or migrate this store's schema. Idempotent; safe when servers start
        together."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the backend's database: this store, and the other stores that share the
        database, are unusable afterwards (their calls raise StoreUnavailable).
        Closing twice does nothing."""

    @abc.abstractmethod
    async def submit(self, account: str, specs: Sequence[JobSpec], now: datetime) -> list[int]:
        """Atomically insert jobs: all of them or none. Returns their ids in order.

        Ids are global, start at 1 and increase. A job with `depends_on` starts WAITING,
        every other one QUEUED. A spec whose non-empty `idempotency_key` matches a job of
        the same account (submitted earlier, or earlier in this same call) is not
        inserted: its position in the result holds the existing job's id. Keys are
        unique per account even under concurrent submits.
        """

    @abc.abstractmethod
    async def get(self, job_id: int, account: str | None = None, *, with_output: bool = True) -> Job:
        """Return the job. Raises NotFound when it is missing or, with `account`
        given, belongs to another account. A PROCESSING job's stdout/stderr hold the
        output appended so far; with `with_output=False` they are left empty (b"")
        instead, sparing the read of its chunks, for callers that need only the
        status. A finished job's outputs are always there."""

    @abc.abstractmethod
    async def attempts(self, job_id: int, account: str | None = None) -> list[Attempt]:
        """The job's ended attempts, oldest first: the latest `ATTEMPTS_KEPT` of them.
        An attempt is recorded in the same transaction (for MongoDB: the same document
        update) as the change that ends it: `finish` (its status the job's final one),
        `reap_expired` (QUEUED when it requeued the job, else the status the job ended
        with); an `unclaim`ed attempt is not counted, so none is recorded. A running
        attempt is not in the list (the job's `attempts` counts it). Deleting a job
        deletes its attempts. Raises NotFound like `get`."""

    @abc.abstractmethod
    async def list_jobs(self, account: str, query: JobQuery) -> list[Job]:
        """Jobs of `account` matching every filter of `query`, ordered by id
        (ascending unless `query.newest_first`), at most `query.limit`."""

    @abc.abstractmethod
    async def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int, per_account_limit: int = 0
    ) -> list[Job]:
        """Atomically move up to `limit` of the oldest QUEUED jobs whose `run_after` is
        unset or not after `now` to PROCESSING, leased to `owner` until `now + lease`,
        with `attempts` incremented and `started_at = now`. No job is ever returned to
        two claimers. An account's jobs are skipped once it has as many PROCESSING as
        its running limit (other accounts' later jobs go first): its `max_running`
        override in the quota store when it has one, else `per_account_limit`; 0 (or
        less) is no limit. The override is read in the claim itself. SQLite and
        PostgreSQL enforce the limit exactly; MongoDB counts an account's PROCESSING
        jobs once per claim, so concurrent claimers can overshoot it by up to one job
        per concurrent claimer."""

    @abc.abstractmethod
    async def owned(self, owner: str) -> list[Job]:
        """The PROCESSING jobs whose lease `owner` holds (expired or not), oldest first:
        what a restarted server with the same identity re-adopts."""

    @abc.abstractmethod
    async def append_output(
        self, job_id: int, owner: str, chunks: Sequence[OutputChunk], *, attempt: int | None = None
    ) -> bool:
        """Durably add output of a PROCESSING job `owner` holds (for `attempt`, when
        given); returns False (and stores nothing) when the lease was lost.

        A stream's stored chunks never overlap: a chunk (or the part of one) that
        overlaps what is stored for its stream, up to the end of its last chunk, is
        dropped, so retrying an append (after a StoreUnavailable that may have
        committed) stores each byte once, even when the retry starts at the same
        offset with more bytes. A chunk past the stored end is stored, leaving a gap;
        reads of the stream (`get`, `read_output`, the output a stalled job keeps)
        stop at its first gap and never bridge it."""

    @abc.abstractmethod
    async def read_output(self, job_id: int, stream: Stream, offset: int, account: str | None = None) -> bytes:
        """The stream's bytes from `offset` on: the stored chunks while the job runs, the
        final output once it finished. Raises NotFound like `get`."""

    @abc.abstractmethod
    async def extend_leases(
        self, owner: str, job_ids: Sequence[int], until: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> set[int]:
        """Extend the leases `owner` still holds on these jobs; with `attempts` (job id ->
        attempt), a job in it only while its `attempts` equals that (ids missing from it
        are checked by owner only). Returns the ids whose lease was extended; a missing
        id means the lease was lost (reaped) and the caller must stop treating the job
        as its own."""

    @abc.abstractmethod
    async def mark_started(
        self,
        job_id: int,
        owner: str,
        container_id: str,
        container_started_at: datetime,
        *,
        attempt: int | None = None,
    ) -> None:
        """Record the container of a job `owner` holds (for `attempt`, when given). No-op
        when the lease was lost."""

    @abc.abstractmethod
    async def finish(self, job_id: int, owner: str, outcome: Outcome, *, attempt: int | None = None) -> bool:
        """Atomically record a terminal outcome of a job `owner` holds (for `attempt`,
        when given), and release the lease. The outcome's stdout/stderr replace any appended chunks (which are
        deleted). A KILLED outcome wins over ERROR when a kill was requested. Returns False
        (and changes nothing) when the lease was lost. Promotes WAITING jobs whose
        dependencies are now all DONE to QUEUED, and fails those whose dependency did
        not end DONE."""

    @abc.abstractmethod
    async def unclaim(self, job_id: int, owner: str, now: datetime, reason: str, *, attempt: int | None = None) -> bool:
        """Atomically give back a PROCESSING job `owner` holds (for `attempt`, when
        given) that never started (its executor could not reach its engine), as if it
        had not been claimed: QUEUED, `attempts` one less (the attempt is not counted),
        no lease, start time or container, `reason` set, appended output deleted. A job
        whose kill was requested ends KILLED instead ("killed before it started").
        Returns False (and changes nothing) when the lease was lost."""

    @abc.abstractmethod
    async def request_kill(self, job_id: int, account: str, now: datetime) -> Job:
        """Set `kill_requested`. A WAITING or QUEUED job becomes KILLED at once; a
        finished job is left unchanged. Returns the job after the change. Raises
        NotFound like `get`."""

    @abc.abstractmethod
    async def kill_all(self, account: str, now: datetime) -> list[int]:
        """`request_kill` for every unfinished job of the account; returns their ids."""

    @abc.abstractmethod
    async def unfinished_accounts(self, after: str, limit: int) -> list[str]:
        """Names of the accounts with at least one WAITING, QUEUED or PROCESSING job,
        greater than `after`, ascending, at most `limit` (a page; pass the last name as
        `after` for the next one)."""

    @abc.abstractmethod
    async def kill_requested(self, job_ids: Sequence[int]) -> set[int]:
        """Which of these processing jobs have a pending kill request."""

    @abc.abstractmethod
    async def counts(self, account: str) -> dict[JobStatus, int]:
        """Number of the account's jobs per status; every status is a key."""

    @abc.abstractmethod
    async def counts_by_account(self) -> dict[str, dict[JobStatus, int]]:
        """Number of jobs per status of every account that has jobs (the admin's
        overview); each account's map has every status as a key."""

    @abc.abstractmethod
    async def finished_since(self, since: datetime, account: str | None = None) -> list[FinishedCount]:
        """Jobs that finished at or after `since` (of `account`, or of every account
        when None), counted per account, status and whole minute after `since`, with the
        summed run time (finished minus started) of those that started. One read; the
        answer grows with accounts x statuses x minutes, never with the number of jobs."""

    @abc.abstractmethod
    async def reap_expired(self, now: datetime, max_attempts: int) -> list[Job]:
        """Recover PROCESSING jobs whose lease expired before `now`: a restartable job
        with fewer than `max_attempts` attempts goes back to QUEUED with `run_after` set
        to `now + backoff(attempts)` (1 s doubling per attempt, at most 60 s) and its
        appended output discarded; any other becomes STALLED (KILLED if a kill was
        requested) with a reason, keeping the output appended so far. Returns the jobs
        after the change."""

    # -- removal ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def delete_finished(self, account: str, job_ids: Sequence[int]) -> list[int]:
        """Delete these finished jobs of `account` with their output: all of them or
        none. Raises NotFound like `get` (a missing job, another account's), and
        FailedPrecondition for a job that has not finished or that a WAITING job still
        depends on. Returns the ids deleted, ascending, each once."""

    @abc.abstractmethod
    async def purge(self, output_before: datetime | None, jobs_before: datetime | None, limit: int) -> Purged:
        """One bounded retention batch over every account: delete up to `limit` finished
        jobs that finished before `jobs_before`, then empty stdout, stderr, result and
        stdin of up to `limit` finished jobs that finished before `output_before` and
        still have some (None skips that part). A finished job a WAITING job depends on
        is not deleted. Each part is atomic by itself; concurrent purges (servers sharing
        the store) never count a job twice. Call again while it returns `limit`."""

    @abc.abstractmethod
    async def trim_output(self, account_bytes: int, limit: int) -> int:
        """One bounded batch of the per-account byte budget: for every account whose
        finished jobs' stdout, stderr, result and stdin add up to more than
        `account_bytes`, empty those of its oldest finished jobs (by finish time) until
        what is left fits, at most `limit` jobs in all; the jobs themselves stay. Only
        finished jobs count and are touched. Returns the number of jobs emptied (fewer
        than `limit`: every account fits now)."""

    # -- server identities ----------------------------------------------------------------

    @abc.abstractmethod
    async def hold_identity(
        self, server_id: str, holder: str, now: datetime, until: datetime, *, replacing: str = ""
    ) -> str:
        """Atomically take or keep the server identity `server_id` for `holder`, leased
        until `until`. It is taken when nobody holds it, when its lease expired (at or
        before `now`), when `holder` holds it already (a renewal), or when `replacing`
        (non-empty) holds it: a holder the caller proved dead. Returns the holder after
        the call: `holder` on success, else the live holder, with nothing changed. Of
        concurrent takers, exactly one succeeds."""

    @abc.abstractmethod
    async def release_identity(self, server_id: str, holder: str) -> None:
        """Give up `server_id` if `holder` holds it (a clean shutdown); else do nothing."""


@dataclass(frozen=True)
class Purged:
    """What one retention batch removed: jobs deleted, jobs whose output was emptied."""

    jobs: int = 0
    outputs: int = 0


@dataclass(frozen=True)
class FinishedCount:
    """Jobs of one account that finished with one status in one minute (`minute` whole
    minutes after the `since` of `JobStore.finished_since`), and their summed run time."""

    account: str
    minute: int
    status: JobStatus
    count: int
    runtime_ns: int = 0


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
        """As `JobStore.initialize`, for this store's schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """As `JobStore.close`: closes the shared database."""

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
    async def apply_changes(
        self, account: str, saved_jobs: Sequence[SavedJobWrite], schedules: Sequence[ScheduleWrite], now: datetime
    ) -> tuple[list[SavedJob], list[Schedule]]:
        """Store the saved jobs, then the schedules, of one apply, atomically: all of them
        or none. Every precondition (a saved job's `expected_version` is still its latest,
        0: no such saved job; a schedule's `expected_updated_at` is still its
        `updated_at`, None: no such schedule) is checked in the same transaction as the
        writes, so a concurrent create, update or delete of any entry makes the whole
        apply fail. Returns what was stored, in the order given. Raises
        FailedPrecondition naming the first entry whose precondition fails (nothing
        written), also for two concurrent applies of one name (one of them wins whole).
        MongoDB without transactions (a standalone server) refuses every apply with
        FailedPrecondition (store/README.md)."""

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


@dataclass(frozen=True)
class StoredSecret:
    """One secret of an account as stored: its value only as ciphertext (the store
    never sees a value in clear; cloudpipe_server/secrets encrypts and decrypts)."""

    name: str
    ciphertext: bytes
    created_at: datetime
    updated_at: datetime


class SecretStore(abc.ABC):
    """Durable storage of accounts' secrets. All methods are coroutines and safe to call
    concurrently. Names are unique per account; `account` scopes every lookup."""

    @abc.abstractmethod
    async def initialize(self) -> None:
        """As `JobStore.initialize`, for this store's schema."""

    @abc.abstractmethod
    async def put_secret(self, account: str, name: str, ciphertext: bytes, now: datetime) -> StoredSecret:
        """Atomically create the secret, or replace its ciphertext (keeping `created_at`,
        setting `updated_at` to `now`). Returns it as stored."""

    @abc.abstractmethod
    async def list_secrets(self, account: str) -> list[StoredSecret]:
        """The account's secrets, by name."""

    @abc.abstractmethod
    async def get_secrets(self, account: str, names: Sequence[str]) -> dict[str, StoredSecret]:
        """Those of `names` the account has, by name (missing ones are left out)."""

    @abc.abstractmethod
    async def delete_secret(self, account: str, name: str) -> bool:
        """Remove the secret; whether it existed."""

    @abc.abstractmethod
    async def reencrypt_secrets(self, transform: Callable[[bytes], bytes]) -> int:
        """Replace every secret's ciphertext (of every account) by `transform(ciphertext)`,
        all in one transaction: when `transform` raises, nothing changes and the error
        propagates. Returns how many were rewritten. (Key rotation.)"""


@dataclass(frozen=True)
class AccountQuota:
    """The admin's overrides of one account's quotas. None: the server's default for
    every account (CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT, _RUNNING_PER_ACCOUNT); 0: no limit;
    N: at most N (WAITING + QUEUED jobs, PROCESSING jobs)."""

    account: str
    max_queued: int | None = None
    max_running: int | None = None
    updated_at: datetime | None = None  # None: no override stored

    def effective(self, default_queued: int, default_running: int) -> tuple[int, int]:
        """(max_queued, max_running) in force for the account; 0: no limit."""
        return (
            default_queued if self.max_queued is None else self.max_queued,
            default_running if self.max_running is None else self.max_running,
        )


class QuotaStore(abc.ABC):
    """Durable storage of per-account quota overrides (one record per account that has
    any). All methods are coroutines and safe to call concurrently. `JobStore.claim`
    reads the same records in its claim, so the running limit it enforces is each
    account's own."""

    @abc.abstractmethod
    async def initialize(self) -> None:
        """As `JobStore.initialize`, for this store's schema."""

    @abc.abstractmethod
    async def get_quota(self, account: str) -> AccountQuota:
        """The account's overrides; both None (and `updated_at` None) when it has none.
        Never raises NotFound: an account without a record runs under the defaults."""

    @abc.abstractmethod
    async def set_quota(
        self, account: str, max_queued: int | None, max_running: int | None, now: datetime
    ) -> AccountQuota:
        """Atomically replace the account's overrides whole (a None field: the default
        again), setting `updated_at` to `now`; both None removes the record. Values are
        the caller's to check (not negative). Returns them as stored (with both None,
        the record as `get_quota` then answers it)."""

    @abc.abstractmethod
    async def list_quotas(self) -> list[AccountQuota]:
        """Every account that has an override, by account name."""

    @abc.abstractmethod
    async def delete_quota(self, account: str) -> bool:
        """Remove the account's overrides (it runs under the defaults again); whether it
        had any."""


class Database(Protocol):
    """The one connection (or pool, or client) of a backend, shared by its stores."""

    async def close(self) -> None:
        """Close it; every store on it is unusable afterwards. Closing twice does nothing."""


@dataclass(frozen=True)
class Stores:
    """The job store, the schedule store, the secret store and the quota store of one
    database, sharing its one `database` object (as `open_stores(url)` builds them)."""

    jobs: JobStore
    schedules: ScheduleStore
    secrets: SecretStore
    database: Database
    quotas: QuotaStore

    async def initialize(self) -> None:
        """Connect the database once and create or migrate every store's schema."""
        await self.jobs.initialize()
        await self.schedules.initialize()
        await self.secrets.initialize()
        await self.quotas.initialize()

    async def close(self) -> None:
        """Close the shared database, once."""
        await self.database.close()
