"""Everything the backends share and nothing that talks to a database: the pure decision
layer (which specs of a submit are retries of an existing job, what the reaper does with
a job whose runner was lost and how long a requeued job waits, when a WAITING job is
settled, how stored output chunks are trimmed and read) and the codecs (times as int64
nanoseconds, specs as JSON-able documents, one `job_from_record`, schedule records and
the errors naming the schedule store's invariants, `secret_from_row`).

Over 400 lines on purpose: the one module a backend imports its shared logic from, so
none of it is written twice.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

# the time codec is shared with the auth service's account store
from cloudpipe_common.timestamps import from_ns as from_ns
from cloudpipe_common.timestamps import to_ns as to_ns
from cloudpipe_server.errors import AlreadyExists, FailedPrecondition, NotFound
from cloudpipe_server.models import (
    ATTEMPT_REASON_BYTES,
    TERMINAL_STATUSES,
    Attempt,
    Collected,
    Job,
    JobSpec,
    JobStatus,
    OutputChunk,
    Resources,
    ResultType,
)
from cloudpipe_server.scheduler.models import (
    CatchupPolicy,
    Fire,
    FireOutcome,
    OverlapPolicy,
    SavedJob,
    Schedule,
    ScheduleSpec,
)
from cloudpipe_server.store.base import StoredSecret


class Record(Protocol):
    """A stored row or document, read by field name (a dict, a DictRow, a sqlite3.Row)."""

    def __getitem__(self, key: str, /) -> Any: ...


MAX_BACKOFF = timedelta(seconds=60)
INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- numbers and times ------------------------------------------------------------------------


def int64(value: int) -> int:
    """`value` clamped to the signed 64-bit range that every backend stores: ids and
    offsets arrive as uint64 (a clamped id is not found; a clamped offset is past the end)."""
    return max(-(2**63), min(value, INT64_MAX))


def offset64(offset: int) -> int:
    """A read offset clamped to [0, 2**63 - 2]: `offset + 1` (SQL's 1-based positions)
    still fits in 64 bits, and an offset that large is past the end of any stream."""
    return max(0, min(offset, INT64_MAX - 1))


def at_ns(value: int) -> datetime:
    """`from_ns` of a time that is never missing."""
    moment = from_ns(value)
    assert moment is not None
    return moment


# -- job specs and jobs -----------------------------------------------------------------------


def spec_to_doc(spec: JobSpec) -> dict[str, Any]:
    """Everything of the spec but stdin, as plain JSON types. `stdin` is kept out of the
    document (backends store it as a binary column), so specs stay small to scan."""
    return {
        "cmd": spec.cmd,
        "name": spec.name,
        "image": spec.image,
        "env": dict(spec.env),
        "tags": dict(spec.tags),
        "result_source": spec.result_source,
        "result_type": spec.result_type.value,
        "max_runtime": spec.max_runtime.total_seconds() if spec.max_runtime is not None else None,
        "restartable": spec.restartable,
        "depends_on": list(spec.depends_on),
        "resources": {
            "cpus": spec.resources.cpus,
            "memory_bytes": spec.resources.memory_bytes,
            "pids": spec.resources.pids,
        },
        "network": spec.network,
        "core": spec.core,
        "multicore": spec.multicore,
        "profile": spec.profile,
        "volumes": list(spec.volumes),
        "serializer": spec.serializer,
        "client_python": spec.client_python,
        "interactive": spec.interactive,
        "idempotency_key": spec.idempotency_key,
        "saved_job": spec.saved_job,
        "saved_job_version": spec.saved_job_version,
        "schedule_id": spec.schedule_id,
        "fresh_container": spec.fresh_container,
        "secrets": list(spec.secrets),
        "inputs": dict(spec.inputs),
        "outputs": dict(spec.outputs),
        "storage_secret": spec.storage_secret,
        "tty": spec.tty,
    }


def spec_from_doc(doc: Mapping[str, Any], stdin: bytes) -> JobSpec:
    """Inverse of `spec_to_doc`."""
    max_runtime = doc.get("max_runtime")
    return JobSpec(
        cmd=doc["cmd"],
        name=doc.get("name", ""),
        image=doc.get("image", ""),
        stdin=stdin,
        env=dict(doc.get("env", {})),
        tags=dict(doc.get("tags", {})),
        result_source=doc.get("result_source", "stdout"),
        result_type=ResultType(doc.get("result_type", "binary")),
        max_runtime=timedelta(seconds=max_runtime) if max_runtime is not None else None,
        restartable=bool(doc.get("restartable", False)),
        depends_on=tuple(doc.get("depends_on", ())),
        resources=Resources(**doc.get("resources", {})),
        network=bool(doc.get("network", False)),
        core=doc.get("core", ""),
        multicore=int(doc.get("multicore", 0)),
        profile=bool(doc.get("profile", False)),
        volumes=tuple(doc.get("volumes", ())),
        serializer=doc.get("serializer", ""),
        client_python=doc.get("client_python", ""),
        interactive=bool(doc.get("interactive", False)),
        idempotency_key=doc.get("idempotency_key", ""),
        saved_job=doc.get("saved_job", ""),
        saved_job_version=int(doc.get("saved_job_version", 0)),
        schedule_id=doc.get("schedule_id", ""),
        fresh_container=bool(doc.get("fresh_container", False)),
        secrets=tuple(doc.get("secrets", ())),
        inputs=dict(doc.get("inputs", {})),
        outputs=dict(doc.get("outputs", {})),
        storage_secret=doc.get("storage_secret", ""),
        tty=bool(doc.get("tty", False)),
    )


def collected_to_doc(collected: Collected) -> dict[str, Any]:
    return {
        "cputime_user_ns": collected.cputime_user_ns,
        "cputime_system_ns": collected.cputime_system_ns,
        "memory_max_usage_bytes": collected.memory_max_usage_bytes,
        "memory_failcnt": collected.memory_failcnt,
        "oom_killed": collected.oom_killed,
    }


def collected_from_doc(doc: Mapping[str, Any] | None) -> Collected:
    return Collected(**doc) if doc else Collected()


# The stored columns a summary leaves out (JobQuery.with_output False): a page of
# summaries reads none of them, whatever their size.
OUTPUT_COLUMNS = ("stdin", "stdout", "stderr", "result")


def job_from_record(record: Record, spec: Mapping[str, Any], collected: Mapping[str, Any] | None) -> Job:
    """A job from its stored record, the same way for every backend. `record` holds the
    job's fields under the `Job` names (`id`, `status`, ..., `run_after`) plus `stdin`:
    times as `to_ns` nanoseconds, outputs bytes-like. `spec` and `collected` are the
    documents of `spec_to_doc` and `collected_to_doc` (None: nothing collected), which
    each backend decodes from its own storage (JSON text, JSONB, BSON)."""
    return Job(
        id=record["id"],
        account=record["account"],
        spec=spec_from_doc(spec, bytes(record["stdin"])),
        status=JobStatus(record["status"]),
        created_at=at_ns(record["created_at"]),
        started_at=from_ns(record["started_at"]),
        container_started_at=from_ns(record["container_started_at"]),
        finished_at=from_ns(record["finished_at"]),
        return_code=record["return_code"],
        stdout=bytes(record["stdout"]),
        stderr=bytes(record["stderr"]),
        result=bytes(record["result"]),
        reason=record["reason"],
        collected=collected_from_doc(collected),
        kill_requested=bool(record["kill_requested"]),
        attempts=record["attempts"],
        container_id=record["container_id"],
        lease_owner=record["lease_owner"],
        lease_expires_at=from_ns(record["lease_expires_at"]),
        run_after=from_ns(record["run_after"]),
    )


# -- decisions ------------------------------------------------------------------------------


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


def attempt_reason(reason: str) -> str:
    """`reason` as an attempt keeps it: at most `ATTEMPT_REASON_BYTES` of UTF-8, never
    cut inside a character."""
    data = reason.encode()
    if len(data) <= ATTEMPT_REASON_BYTES:
        return reason
    return data[:ATTEMPT_REASON_BYTES].decode(errors="ignore")


def attempt_values(attempt: Attempt) -> dict[str, Any]:
    """An ended attempt as stored: a row's columns (named parameters), or the fields of
    the document embedded in its job's; the reason cut by `attempt_reason`."""
    return {
        "job_id": attempt.job_id,
        "attempt": attempt.number,
        "status": attempt.status.value,
        "started_at": to_ns(attempt.started_at),
        "ended_at": to_ns(attempt.ended_at),
        "return_code": attempt.return_code,
        "reason": attempt_reason(attempt.reason),
        "owner": attempt.owner,
    }


def attempt_from_record(record: Record) -> Attempt:
    """The inverse of `attempt_values`."""
    return Attempt(
        job_id=record["job_id"],
        number=record["attempt"],
        status=JobStatus(record["status"]),
        ended_at=at_ns(record["ended_at"]),
        started_at=from_ns(record["started_at"]),
        return_code=record["return_code"],
        reason=record["reason"],
        owner=record["owner"],
    )


def reaped_attempt(job: Job, decision: Reaped, now: datetime) -> Attempt:
    """The attempt a reap ends: the lease holder's run of `job` (as read before the
    reap), requeued (QUEUED) or ended as `decision` says."""
    return Attempt(
        job_id=job.id,
        number=job.attempts,
        status=decision.status,
        ended_at=now,
        started_at=job.started_at,
        reason=decision.reason,
        owner=job.lease_owner,
    )


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


# -- schedules, saved jobs, fires -----------------------------------------------------------
# An inline job spec's stdin is base64 in the schedule's document (schedules are few and
# small; function jobs carry their pickle here).


def schedule_spec_to_doc(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "cron": spec.cron,
        "timezone": spec.timezone,
        "saved_job": spec.saved_job,
        "saved_job_version": spec.saved_job_version,
        "job": spec_to_doc(spec.job) if spec.job is not None else None,
        "job_stdin": base64.b64encode(spec.job.stdin).decode() if spec.job is not None else "",
        "jitter": spec.jitter.total_seconds(),
        "start_at": to_ns(spec.start_at),
        "end_at": to_ns(spec.end_at),
        "overlap": spec.overlap.value,
        "catchup": spec.catchup.value,
        "catchup_window": spec.catchup_window.total_seconds(),
        "description": spec.description,
    }


def schedule_spec_from_doc(doc: Mapping[str, Any]) -> ScheduleSpec:
    job = doc.get("job")
    return ScheduleSpec(
        name=doc["name"],
        cron=doc["cron"],
        timezone=doc.get("timezone", "UTC"),
        saved_job=doc.get("saved_job", ""),
        saved_job_version=int(doc.get("saved_job_version", 0)),
        job=spec_from_doc(job, base64.b64decode(doc.get("job_stdin", ""))) if job is not None else None,
        jitter=timedelta(seconds=doc.get("jitter", 0.0)),
        start_at=from_ns(doc.get("start_at")),
        end_at=from_ns(doc.get("end_at")),
        overlap=OverlapPolicy(doc.get("overlap", OverlapPolicy.SKIP.value)),
        catchup=CatchupPolicy(doc.get("catchup", CatchupPolicy.RUN_ONCE.value)),
        catchup_window=timedelta(seconds=doc.get("catchup_window", 3600.0)),
        description=doc.get("description", ""),
    )


@functools.lru_cache(maxsize=8192)
def schedule_spec_from_json(text: str) -> ScheduleSpec:
    """`schedule_spec_from_doc` of a JSON text, reused: a claim of many schedules reads
    the same definitions pass after pass (the result is frozen; do not mutate its maps)."""
    return schedule_spec_from_doc(json.loads(text))


def cursor_ns(cursor: tuple[datetime, datetime] | None) -> tuple[int | None, int | None]:
    """(next_fire_at, next_due_at) as nanoseconds, (None, None) for an ended schedule."""
    if cursor is None:
        return None, None
    return to_ns(cursor[0]), to_ns(cursor[1])


def saved_job_exists(account: str, name: str) -> AlreadyExists:
    return AlreadyExists(f"name: a saved job named {name!r} already exists in account {account}; update it instead")


def saved_job_missing(name: str, version: int = 0) -> NotFound:
    if version:
        return NotFound(f"saved_job: saved job {name!r} has no version {version}")
    return NotFound(f"saved_job: no saved job named {name!r}")


def schedule_exists(account: str, name: str) -> AlreadyExists:
    return AlreadyExists(f"name: a schedule named {name!r} already exists in account {account}")


def schedule_missing(name: str) -> NotFound:
    return NotFound(f"name: no schedule named {name!r}")


def check_saved_job_write(name: str, expected: int, latest: int | None) -> None:
    """Raise FailedPrecondition unless the saved job's latest version (None: there is
    none) is the one an apply planned against (0: none)."""
    if (latest or 0) == expected:
        return
    if not expected:
        found = f"it was created meanwhile (now at version {latest})"
    elif latest is None:
        found = "it was deleted meanwhile"
    else:
        found = f"it is at version {latest} now"
    raise FailedPrecondition(
        f"saved_jobs.{name}: changed since it was read (expected version {expected or 'none'}; {found});"
        " nothing was written"
    )


def check_schedule_write(name: str, expected: datetime | None, updated_at: int | None) -> None:
    """Raise FailedPrecondition unless the schedule's stored `updated_at` (ns; None:
    there is no such schedule) is the one an apply planned against (None: none)."""
    if (None if expected is None else to_ns(expected)) == updated_at:
        return
    if expected is None:
        found = "it was created meanwhile"
    elif updated_at is None:
        found = "it was deleted meanwhile"
    else:
        found = f"it was updated at {at_ns(updated_at).isoformat()}"
    raise FailedPrecondition(f"schedules.{name}: changed since it was read ({found}); nothing was written")


def saved_job_from_row(row: Mapping[str, Any], spec_doc: Mapping[str, Any]) -> SavedJob:
    spec = spec_from_doc(spec_doc, bytes(row["stdin"]))
    return SavedJob(row["account"], row["name"], row["version"], spec, at_ns(row["created_at"]), row["description"])


def schedule_from_row(row: Mapping[str, Any], spec: Mapping[str, Any] | str) -> Schedule:
    """A schedule from a row; `spec` is the definition as a document or as JSON text."""
    return Schedule(
        id=row["id"],
        account=row["account"],
        spec=schedule_spec_from_json(spec) if isinstance(spec, str) else schedule_spec_from_doc(spec),
        created_at=at_ns(row["created_at"]),
        updated_at=at_ns(row["updated_at"]),
        next_fire_at=from_ns(row["next_fire_at"]),
        next_due_at=from_ns(row["next_due_at"]),
        paused=bool(row["paused"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=from_ns(row["lease_expires_at"]),
    )


FIRE_COLUMNS = (
    "schedule_id",
    "scheduled_at",
    "account",
    "due_at",
    "recorded_at",
    "outcome",
    "job_id",
    "job_status",
    "reason",
    "manual",
)


def fire_values(fire: Fire) -> tuple[Any, ...]:
    """The fire's values in `FIRE_COLUMNS` order, times as nanoseconds."""
    return (
        fire.schedule_id,
        to_ns(fire.scheduled_at),
        fire.account,
        to_ns(fire.due_at),
        to_ns(fire.recorded_at),
        fire.outcome.value,
        fire.job_id,
        fire.job_status,
        fire.reason,
        bool(fire.manual),
    )


def fire_from_row(row: Mapping[str, Any]) -> Fire:
    return Fire(
        schedule_id=row["schedule_id"],
        scheduled_at=at_ns(row["scheduled_at"]),
        account=row["account"],
        due_at=at_ns(row["due_at"]),
        recorded_at=at_ns(row["recorded_at"]),
        outcome=FireOutcome(row["outcome"]),
        job_id=row["job_id"],
        job_status=row["job_status"],
        reason=row["reason"],
        manual=bool(row["manual"]),
    )


def decide_trim(sized: Iterable[tuple[str, int, int]], totals: Mapping[str, int], budget: int, limit: int) -> list[int]:
    """Which finished jobs to empty of their output so each account is back within
    `budget` bytes: `sized` is (account, job id, output bytes) of finished jobs with
    output, oldest first within each account; `totals` is each account's total. The
    oldest go first, until what they free covers the account's excess; at most `limit`
    jobs in all."""
    chosen: list[int] = []
    freed: dict[str, int] = {}
    for account, job_id, size in sized:
        if len(chosen) >= limit:
            break
        if size <= 0 or totals.get(account, 0) - freed.get(account, 0) <= budget:
            continue
        chosen.append(job_id)
        freed[account] = freed.get(account, 0) + size
    return chosen


# -- secrets --------------------------------------------------------------------------------


def secret_from_row(row: Record) -> StoredSecret:
    """A stored secret from its row or document (`name`, `ciphertext` as bytes or a
    bytes-like driver value, `created_at`/`updated_at` as nanoseconds)."""
    return StoredSecret(row["name"], bytes(row["ciphertext"]), at_ns(row["created_at"]), at_ns(row["updated_at"]))
