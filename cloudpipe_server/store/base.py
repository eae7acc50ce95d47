"""The job store contract. Every backend implements `JobStore`; the contract tests in
tests/contract/ run the same suite against each of them.

Claims are leases: a dispatcher owns a processing job only until `lease_expires_at`,
and must extend the lease while the job runs. A job whose lease ran out is recovered by
`reap_expired` (requeued when restartable, otherwise stalled), so no job stays
`processing` forever after a crash.

A lease is held by an owner for one attempt: a job can be reaped, requeued and claimed
again by the same owner while its first run still goes on. The lease holder's
operations (`append_output`, `extend_leases`, `mark_started`, `finish`) therefore take
the attempt they act for (the job's `attempts` as its claim returned it): given, the
operation applies only while the job's `attempts` still equals it, so a stale run
changes nothing; omitted (None), only the owner is checked.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from cloudpipe_server.models import Job, JobQuery, JobSpec, JobStatus, Outcome, OutputChunk, Stream


class JobStore(abc.ABC):
    """Durable storage of jobs. All methods are coroutines and safe to call concurrently."""

    @abc.abstractmethod
    async def initialize(self) -> None:
        """Create or migrate the schema. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

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
        two claimers. With `per_account_limit` > 0, an account's jobs are skipped once
        it has that many PROCESSING (other accounts' later jobs go first). SQLite and
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
    async def request_kill(self, job_id: int, account: str, now: datetime) -> Job:
        """Set `kill_requested`. A WAITING or QUEUED job becomes KILLED at once; a
        finished job is left unchanged. Returns the job after the change. Raises
        NotFound like `get`."""

    @abc.abstractmethod
    async def kill_all(self, account: str, now: datetime) -> list[int]:
        """`request_kill` for every unfinished job of the account; returns their ids."""

    @abc.abstractmethod
    async def kill_requested(self, job_ids: Sequence[int]) -> set[int]:
        """Which of these processing jobs have a pending kill request."""

    @abc.abstractmethod
    async def counts(self, account: str) -> dict[JobStatus, int]:
        """Number of the account's jobs per status; every status is a key."""

    @abc.abstractmethod
    async def reap_expired(self, now: datetime, max_attempts: int) -> list[Job]:
        """Recover PROCESSING jobs whose lease expired before `now`: a restartable job
        with fewer than `max_attempts` attempts goes back to QUEUED with `run_after` set
        to `now + backoff(attempts)` (1 s doubling per attempt, at most 60 s) and its
        appended output discarded; any other becomes STALLED (KILLED if a kill was
        requested) with a reason, keeping the output appended so far. Returns the jobs
        after the change."""
