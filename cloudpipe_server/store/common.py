"""What every backend decides the same way: which specs of a submit are retries of a
job that exists (idempotency keys), what the reaper does with a job whose runner was
lost and how long a requeued job waits, when a WAITING job is settled, and how stored
output chunks read from an offset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloudpipe_server.models import TERMINAL_STATUSES, Job, JobSpec, JobStatus, OutputChunk

MAX_BACKOFF = timedelta(seconds=60)
INT64_MAX = 2**63 - 1


def int64(value: int) -> int:
    """`value` clamped to the signed 64-bit range that every backend stores: ids and
    offsets arrive as uint64 (a clamped id is not found; a clamped offset is past the end)."""
    return max(-(2**63), min(value, INT64_MAX))


def offset64(offset: int) -> int:
    """A read offset clamped to [0, 2**63 - 2]: `offset + 1` (SQL's 1-based positions)
    still fits in 64 bits, and an offset that large is past the end of any stream."""
    return max(0, min(offset, INT64_MAX - 1))


def backoff(attempts: int) -> timedelta:
    """How long a job requeued after `attempts` lost runs waits: 1 s, doubling per
    attempt, at most 60 s."""
    return min(timedelta(seconds=2 ** min(max(attempts - 1, 0), 6)), MAX_BACKOFF)


@dataclass(frozen=True)
class Reaped:
    """What becomes of a PROCESSING job whose lease expired: QUEUED again (with
    `run_after`, its appended output discarded), or ended STALLED or KILLED (`finished`,
    keeping its output)."""

    status: JobStatus
    reason: str
    run_after: datetime | None = None

    @property
    def requeued(self) -> bool:
        return self.status is JobStatus.QUEUED


def decide_reap(job: Job, now: datetime, max_attempts: int) -> Reaped:
    """The reaper's decision for `job`, whose runner was lost (its lease expired)."""
    if job.kill_requested:
        return Reaped(JobStatus.KILLED, "the runner of this job was lost after a kill was requested")
    if not job.spec.restartable:
        return Reaped(JobStatus.STALLED, "the runner of this job was lost and it is not restartable")
    if job.attempts >= max_attempts:
        return Reaped(JobStatus.STALLED, f"the runner of this job was lost and it used all {max_attempts} attempts")
    reason = f"requeued after its runner was lost (attempt {job.attempts} of {max_attempts})"
    return Reaped(JobStatus.QUEUED, reason, now + backoff(job.attempts))


@dataclass(frozen=True)
class Settled:
    """A WAITING job's new state: QUEUED (its dependencies all ended DONE) or ERROR (one
    ended otherwise; `reason` says which)."""

    job_id: int
    status: JobStatus
    reason: str = ""


def decide_settle(waiting: Iterable[tuple[int, Sequence[int]]], statuses: dict[int, JobStatus]) -> list[Settled]:
    """Decide WAITING jobs, given as (id, depends_on) in id order, against `statuses`
    (job id -> status of at least their dependencies). Decisions go into `statuses` as
    they are made, so a job later in the order sees an earlier one's. Undecided jobs
    (a dependency still unfinished) are left out."""
    decided: list[Settled] = []
    for job_id, deps in waiting:
        failed = [d for d in deps if statuses.get(d) in TERMINAL_STATUSES and statuses[d] is not JobStatus.DONE]
        if failed:
            settled = Settled(job_id, JobStatus.ERROR, f"dependency job {failed[0]} ended {statuses[failed[0]].value}")
        elif all(statuses.get(d) is JobStatus.DONE for d in deps):
            settled = Settled(job_id, JobStatus.QUEUED)
        else:
            continue
        statuses[job_id] = settled.status
        decided.append(settled)
    return decided


@dataclass
class Deduped:
    """A submit with its idempotency keys resolved. `fresh` are the specs to insert;
    `sources` says, per submitted spec, where its id comes from: the index of a fresh
    spec (also for a key repeated within the call), or the key of an existing job."""

    fresh: list[JobSpec] = field(default_factory=list)
    sources: list[int | str] = field(default_factory=list)
    existing: dict[str, int] = field(default_factory=dict)

    def ids(self, inserted: Sequence[int]) -> list[int]:
        """The submit's result, given the ids the fresh specs got (in order)."""
        return [inserted[s] if isinstance(s, int) else self.existing[s] for s in self.sources]


def dedupe(specs: Sequence[JobSpec], existing: Mapping[str, int]) -> Deduped:
    """Resolve `specs` against `existing` (key -> id of the account's stored jobs)."""
    plan = Deduped(existing=dict(existing))
    first: dict[str, int] = {}  # key -> index in fresh
    for spec in specs:
        key = spec.idempotency_key
        if key and key in plan.existing:
            plan.sources.append(key)
        elif key and key in first:
            plan.sources.append(first[key])
        else:
            if key:
                first[key] = len(plan.fresh)
            plan.sources.append(len(plan.fresh))
            plan.fresh.append(spec)
    return plan


def keys_of(specs: Iterable[JobSpec]) -> list[str]:
    """The distinct non-empty idempotency keys of `specs`, sorted."""
    return sorted({spec.idempotency_key for spec in specs if spec.idempotency_key})


def unstored(chunks: Iterable[OutputChunk], ends: Mapping[int, int]) -> list[OutputChunk]:
    """The parts of `chunks` (one append) that go beyond what is stored. `ends` maps a
    stream (as int) to the end of its stored data, which is the end of its last chunk:
    a chunk (or the part of one) that overlaps stored data, or an earlier chunk of the
    same append, is dropped, so a stream's stored chunks never overlap. A retried append
    that carries more bytes than the one that committed stores exactly the new ones."""
    ends = dict(ends)
    kept: list[OutputChunk] = []
    for chunk in chunks:
        stream, stop = int(chunk.stream), chunk.offset + len(chunk.data)
        end = ends.get(stream, 0)
        if stop <= end:
            continue
        skip = max(end - chunk.offset, 0)
        kept.append(OutputChunk(chunk.stream, chunk.offset + skip, chunk.data[skip:]))
        ends[stream] = stop
    return kept


def read_from(chunks: Iterable[tuple[int, int, bytes | None]], offset: int) -> bytes:
    """The bytes from `offset` on of a stream stored as (start, length, data) chunks,
    given in offset order from the stream's first chunk. The stream is what is
    contiguous from offset 0: reading stops at the first gap, which is never bridged.
    `data` may be None for a chunk that ends at or before `offset` (only its extent
    counts); a None where bytes are needed ends the read too. Overlapping chunks (stored
    before overlaps were trimmed) give each byte once."""
    parts: list[bytes] = []
    end = 0
    for start, length, data in chunks:
        if start > end:
            break
        if start + length > max(offset, end):
            if data is None:
                break
            parts.append(data[max(offset, end) - start :])
        end = max(end, start + length)
    return b"".join(parts)
