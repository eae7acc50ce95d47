"""Schedule spec <-> JSON-able dict, and the names of the schedule store's invariants,
shared by the schedule store backends. An inline job spec's stdin is base64 in the
document (schedules are few and small; function jobs carry their pickle here)."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cloudpipe_server.errors import AlreadyExists, NotFound
from cloudpipe_server.scheduler.models import (
    CatchupPolicy,
    Fire,
    FireOutcome,
    OverlapPolicy,
    SavedJob,
    Schedule,
    ScheduleSpec,
)
from cloudpipe_server.store.codec import from_ns, spec_from_doc, spec_to_doc, to_ns


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


def schedule_spec_from_doc(doc: dict[str, Any]) -> ScheduleSpec:
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


def cursor_of(schedule: Schedule) -> tuple[datetime, datetime] | None:
    if schedule.next_fire_at is None or schedule.next_due_at is None:
        return None
    return schedule.next_fire_at, schedule.next_due_at


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


def _time(value: int | None) -> datetime:
    moment = from_ns(value)
    assert moment is not None
    return moment


def saved_job_from_row(row: Mapping[str, Any], spec_doc: dict[str, Any]) -> SavedJob:
    spec = spec_from_doc(spec_doc, bytes(row["stdin"]))
    return SavedJob(row["account"], row["name"], row["version"], spec, _time(row["created_at"]), row["description"])


def schedule_from_row(row: Mapping[str, Any], spec: dict[str, Any] | str) -> Schedule:
    """A schedule from a row; `spec` is the definition as a document or as JSON text."""
    return Schedule(
        id=row["id"],
        account=row["account"],
        spec=schedule_spec_from_json(spec) if isinstance(spec, str) else schedule_spec_from_doc(spec),
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
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
        scheduled_at=_time(row["scheduled_at"]),
        account=row["account"],
        due_at=_time(row["due_at"]),
        recorded_at=_time(row["recorded_at"]),
        outcome=FireOutcome(row["outcome"]),
        job_id=row["job_id"],
        job_status=row["job_status"],
        reason=row["reason"],
        manual=bool(row["manual"]),
    )
