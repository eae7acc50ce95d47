"""Protobuf <-> domain for saved jobs and schedules (the job messages are in convert.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from cloudpipe_proto.v1 import schedules_pb2 as pb
from cloudpipe_server.convert import duration_from_pb, spec_from_pb, spec_to_pb
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.scheduler.models import (
    DEFAULT_CATCHUP_WINDOW,
    CatchupPolicy,
    Fire,
    FireOutcome,
    OverlapPolicy,
    RunOverrides,
    SavedJob,
    Schedule,
    ScheduleSpec,
)

OVERLAP_TO_PB: dict[OverlapPolicy, int] = {
    OverlapPolicy.SKIP: pb.OVERLAP_POLICY_SKIP,
    OverlapPolicy.ALLOW: pb.OVERLAP_POLICY_ALLOW,
    OverlapPolicy.BUFFER_ONE: pb.OVERLAP_POLICY_BUFFER_ONE,
    OverlapPolicy.CANCEL_PREVIOUS: pb.OVERLAP_POLICY_CANCEL_PREVIOUS,
}
OVERLAP_FROM_PB = {**{v: k for k, v in OVERLAP_TO_PB.items()}, pb.OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy.SKIP}
CATCHUP_TO_PB: dict[CatchupPolicy, int] = {
    CatchupPolicy.SKIP: pb.CATCHUP_POLICY_SKIP,
    CatchupPolicy.RUN_ONCE: pb.CATCHUP_POLICY_RUN_ONCE,
    CatchupPolicy.RUN_ALL: pb.CATCHUP_POLICY_RUN_ALL,
}
CATCHUP_FROM_PB = {**{v: k for k, v in CATCHUP_TO_PB.items()}, pb.CATCHUP_POLICY_UNSPECIFIED: CatchupPolicy.RUN_ONCE}
OUTCOME_TO_PB: dict[FireOutcome, int] = {
    FireOutcome.PENDING: pb.FIRE_OUTCOME_PENDING,
    FireOutcome.BUFFERED: pb.FIRE_OUTCOME_BUFFERED,
    FireOutcome.RUNNING: pb.FIRE_OUTCOME_RUNNING,
    FireOutcome.FINISHED: pb.FIRE_OUTCOME_FINISHED,
    FireOutcome.SKIPPED: pb.FIRE_OUTCOME_SKIPPED,
    FireOutcome.FAILED: pb.FIRE_OUTCOME_FAILED,
}


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def duration(span: timedelta) -> Duration:
    value = Duration()
    value.FromTimedelta(span)
    return value


def _time(
    msg: pb.ScheduleSpec | pb.PreviewScheduleRequest | pb.ScheduleHistoryRequest, name: str, where: str = ""
) -> datetime | None:
    """The Timestamp field `name` (None when unset). Raises InvalidArgument naming the
    field for one out of the Timestamp range; the scheduler's own bounds (`cron.EARLIEST`
    to `cron.LATEST`) are checked by the service."""
    if not msg.HasField(name):
        return None
    try:
        return getattr(msg, name).ToDatetime(UTC)  # type: ignore[no-any-return]
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(f"{where}{name}: not a valid timestamp: {exc}") from None


def _span(msg: pb.ScheduleSpec, name: str, where: str) -> timedelta | None:
    """The Duration field `name` (None when unset). Raises InvalidArgument naming the
    field for one too large for a timedelta; maxima (`cron.MAX_JITTER`,
    `policies.MAX_CATCHUP_WINDOW`) are checked by the service."""
    if not msg.HasField(name):
        return None
    try:
        return getattr(msg, name).ToTimedelta()  # type: ignore[no-any-return]
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(f"{where}{name}: not a valid duration: {exc}") from None


def saved_job_to_pb(saved: SavedJob) -> pb.SavedJob:
    return pb.SavedJob(
        name=saved.name,
        version=saved.version,
        spec=spec_to_pb(saved.spec),
        description=saved.description,
        created_at=timestamp(saved.created_at),
    )


def overrides_from_pb(msg: pb.RunOverrides) -> RunOverrides:
    if msg.resources.cpus < 0 or msg.resources.memory_bytes < 0 or msg.resources.pids < 0:
        raise InvalidArgument("overrides.resources: limits must not be negative")
    max_runtime = duration_from_pb(msg.max_runtime, "overrides.max_runtime") if msg.HasField("max_runtime") else None
    if max_runtime is not None and max_runtime < timedelta(0):
        raise InvalidArgument("overrides.max_runtime: must not be negative")
    return RunOverrides(
        args=tuple(msg.args),
        stdin=msg.stdin if msg.HasField("stdin") else None,
        env=dict(msg.env),
        image=msg.image,
        cpus=msg.resources.cpus,
        memory_bytes=msg.resources.memory_bytes,
        pids=msg.resources.pids,
        max_runtime=max_runtime or None,
    )


def schedule_spec_from_pb(msg: pb.ScheduleSpec, where: str = "spec") -> ScheduleSpec:
    target = msg.WhichOneof("target")
    if target not in ("saved_job", "job", None):
        raise InvalidArgument(f"{where}.target: unknown target {target}")
    if msg.overlap not in OVERLAP_FROM_PB:
        raise InvalidArgument(f"{where}.overlap: unknown overlap policy {msg.overlap}")
    if msg.catchup not in CATCHUP_FROM_PB:
        raise InvalidArgument(f"{where}.catchup: unknown catch-up policy {msg.catchup}")
    prefix = f"{where}."
    window = _span(msg, "catchup_window", prefix)
    return ScheduleSpec(
        name=msg.name,
        cron=msg.cron,
        timezone=msg.timezone,
        saved_job=msg.saved_job if target == "saved_job" else "",
        saved_job_version=msg.saved_job_version,
        job=spec_from_pb(msg.job, f"{where}.job") if target == "job" else None,
        jitter=_span(msg, "jitter", prefix) or timedelta(0),
        start_at=_time(msg, "start_at", prefix),
        end_at=_time(msg, "end_at", prefix),
        overlap=OVERLAP_FROM_PB[msg.overlap],
        catchup=CATCHUP_FROM_PB[msg.catchup],
        catchup_window=window or DEFAULT_CATCHUP_WINDOW,
        description=msg.description,
    )


def schedule_spec_to_pb(spec: ScheduleSpec) -> pb.ScheduleSpec:
    msg = pb.ScheduleSpec(
        name=spec.name,
        cron=spec.cron,
        timezone=spec.timezone,
        saved_job_version=spec.saved_job_version,
        jitter=duration(spec.jitter),
        overlap=OVERLAP_TO_PB[spec.overlap],  # type: ignore[arg-type]
        catchup=CATCHUP_TO_PB[spec.catchup],  # type: ignore[arg-type]
        catchup_window=duration(spec.catchup_window),
        description=spec.description,
    )
    if spec.saved_job:
        msg.saved_job = spec.saved_job
    elif spec.job is not None:
        msg.job.CopyFrom(spec_to_pb(spec.job))
    if spec.start_at is not None:
        msg.start_at.CopyFrom(timestamp(spec.start_at))
    if spec.end_at is not None:
        msg.end_at.CopyFrom(timestamp(spec.end_at))
    return msg


def fire_to_pb(fire: Fire) -> pb.Fire:
    return pb.Fire(
        schedule_id=fire.schedule_id,
        scheduled_at=timestamp(fire.scheduled_at),
        due_at=timestamp(fire.due_at),
        recorded_at=timestamp(fire.recorded_at),
        outcome=OUTCOME_TO_PB[fire.outcome],  # type: ignore[arg-type]
        job_id=fire.job_id or 0,
        job_status=fire.job_status,
        reason=fire.reason,
        manual=fire.manual,
    )


def schedule_to_pb(schedule: Schedule, last_fire: Fire | None = None) -> pb.Schedule:
    msg = pb.Schedule(
        id=schedule.id,
        spec=schedule_spec_to_pb(schedule.spec),
        paused=schedule.paused,
        created_at=timestamp(schedule.created_at),
        updated_at=timestamp(schedule.updated_at),
    )
    if schedule.next_fire_at is not None and schedule.next_due_at is not None:
        msg.next_fire_at.CopyFrom(timestamp(schedule.next_fire_at))
        msg.next_due_at.CopyFrom(timestamp(schedule.next_due_at))
    if last_fire is not None:
        msg.last_fire.CopyFrom(fire_to_pb(last_fire))
    return msg


def request_time(msg: pb.PreviewScheduleRequest | pb.ScheduleHistoryRequest, name: str) -> datetime | None:
    return _time(msg, name)
