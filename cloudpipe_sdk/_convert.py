"""protobuf <-> the SDK's own types (`cloudpipe_sdk._types`): the only bridge.

Everything read from the server goes through a `*_from_pb` function here; what this SDK
cannot read (a status, event or policy a newer server added) raises ProtocolError, not
a bare KeyError or ValueError.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import schedules_pb2 as spb
from cloudpipe_proto.v1 import secrets_pb2 as secpb
from cloudpipe_proto.v1 import volumes_pb2 as vpb
from cloudpipe_sdk._compat import UTC
from cloudpipe_sdk._errors import ProtocolError
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._types import (
    Attempt,
    Event,
    Exit,
    Fire,
    JobSnapshot,
    JobSpec,
    Output,
    ResourceUsage,
    SavedJob,
    Schedule,
    ScheduleSpec,
    Secret,
    StatusChange,
    StreamName,
    Volume,
    VolumeFile,
)

P = ParamSpec("P")
R = TypeVar("R")

STATUS_TO_PB = {
    JobStatus.WAITING: pb.JOB_STATUS_WAITING,
    JobStatus.QUEUED: pb.JOB_STATUS_QUEUED,
    JobStatus.PROCESSING: pb.JOB_STATUS_PROCESSING,
    JobStatus.DONE: pb.JOB_STATUS_DONE,
    JobStatus.ERROR: pb.JOB_STATUS_ERROR,
    JobStatus.KILLED: pb.JOB_STATUS_KILLED,
    JobStatus.STALLED: pb.JOB_STATUS_STALLED,
}
_STATUS_FROM_PB = {value: status for status, value in STATUS_TO_PB.items()}
_RESULT_TYPES = {"binary": pb.RESULT_TYPE_BINARY, "pickle": pb.RESULT_TYPE_PICKLE}
_STREAMS: dict[int, StreamName] = {pb.OUTPUT_STREAM_STDOUT: "stdout", pb.OUTPUT_STREAM_STDERR: "stderr"}
SIGNALS = {"TERM": pb.SIGNAL_TERM, "INT": pb.SIGNAL_INT, "KILL": pb.SIGNAL_KILL}
OVERLAP_TO_PB = {
    "skip": spb.OVERLAP_POLICY_SKIP,
    "allow": spb.OVERLAP_POLICY_ALLOW,
    "buffer_one": spb.OVERLAP_POLICY_BUFFER_ONE,
    "cancel_previous": spb.OVERLAP_POLICY_CANCEL_PREVIOUS,
}
CATCHUP_TO_PB = {
    "skip": spb.CATCHUP_POLICY_SKIP,
    "run_once": spb.CATCHUP_POLICY_RUN_ONCE,
    "run_all": spb.CATCHUP_POLICY_RUN_ALL,
}
_OVERLAP_FROM_PB = {value: name for name, value in OVERLAP_TO_PB.items()}
_CATCHUP_FROM_PB = {value: name for name, value in CATCHUP_TO_PB.items()}
_OUTCOMES = {value: name.removeprefix("FIRE_OUTCOME_").lower() for name, value in spb.FireOutcome.items()}


def decoder(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn what a message this SDK does not understand raises into ProtocolError."""

    @wraps(fn)
    def decode(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (KeyError, ValueError) as exc:
            raise ProtocolError(f"unexpected answer from the server ({exc!r}): upgrade the SDK") from exc

    return decode


def _time(stamp: Any) -> datetime:
    return stamp.ToDatetime(UTC)  # type: ignore[no-any-return]


def _optional_time(message: Any, name: str) -> datetime | None:
    return _time(getattr(message, name)) if message.HasField(name) else None


def _optional_duration(message: Any, name: str) -> timedelta | None:
    return getattr(message, name).ToTimedelta() if message.HasField(name) else None


# -- jobs ------------------------------------------------------------------------------


@decoder
def status_from_pb(value: int) -> JobStatus:
    return _STATUS_FROM_PB[value]  # type: ignore[index]


def spec_to_pb(spec: JobSpec) -> pb.JobSpec:
    message = pb.JobSpec(
        cmd=spec.cmd,
        name=spec.name,
        image=spec.image,
        stdin=spec.stdin,
        env=dict(spec.env),
        tags=dict(spec.tags),
        result_source=spec.result_source,
        result_type=_RESULT_TYPES[spec.result_type],
        restartable=spec.restartable,
        depends_on=list(spec.depends_on),
        volumes=list(spec.volumes),
        secrets=list(spec.secrets),
        inputs=dict(spec.inputs),
        outputs=dict(spec.outputs),
        storage_secret=spec.storage_secret,
        resources=pb.Resources(cpus=spec.cpus, memory_bytes=spec.memory),
        network=spec.network,
        serializer=spec.serializer,
        client_python=spec.client_python,
        interactive=spec.interactive,
        tty=spec.tty,
        idempotency_key=spec.idempotency_key,
        saved_job=spec.saved_job,
        saved_job_version=spec.saved_job_version,
        schedule_id=spec.schedule_id,
        fresh_container=spec.fresh_container,
    )
    if spec.timeout is not None:
        message.max_runtime.FromTimedelta(timedelta(seconds=spec.timeout))
    return message


@decoder
def spec_from_pb(message: pb.JobSpec) -> JobSpec:
    runtime = _optional_duration(message, "max_runtime")
    return JobSpec(
        cmd=message.cmd,
        name=message.name,
        image=message.image,
        stdin=message.stdin,
        env=dict(message.env),
        tags=dict(message.tags),
        result_source=message.result_source or "stdout",
        result_type="pickle" if message.result_type == pb.RESULT_TYPE_PICKLE else "binary",
        timeout=runtime.total_seconds() if runtime is not None else None,
        cpus=message.resources.cpus,
        memory=message.resources.memory_bytes,
        network=message.network,
        restartable=message.restartable,
        fresh_container=message.fresh_container,
        interactive=message.interactive,
        tty=message.tty,
        depends_on=tuple(message.depends_on),
        volumes=tuple(message.volumes),
        secrets=tuple(message.secrets),
        inputs=dict(message.inputs),
        outputs=dict(message.outputs),
        storage_secret=message.storage_secret,
        serializer=message.serializer,
        client_python=message.client_python,
        idempotency_key=message.idempotency_key,
        saved_job=message.saved_job,
        saved_job_version=message.saved_job_version,
        schedule_id=message.schedule_id,
    )


@decoder
def snapshot_from_pb(message: pb.Job) -> JobSnapshot:
    return JobSnapshot(
        id=message.id,
        status=status_from_pb(message.status),
        spec=spec_from_pb(message.spec),
        account=message.account,
        created_at=_optional_time(message, "created_at"),
        started_at=_optional_time(message, "started_at"),
        finished_at=_optional_time(message, "finished_at"),
        return_code=message.return_code if message.HasField("return_code") else None,
        stdout=message.stdout,
        stderr=message.stderr,
        result=message.result,
        reason=message.reason,
        runtime=_optional_duration(message, "runtime"),
        queue_delay=_optional_duration(message, "queue_delay"),
        overhead_delay=_optional_duration(message, "overhead_delay"),
        collected=ResourceUsage(
            cputime_user_ns=message.collected.cputime_user_ns,
            cputime_system_ns=message.collected.cputime_system_ns,
            memory_max_usage_bytes=message.collected.memory_max_usage_bytes,
            memory_failcnt=message.collected.memory_failcnt,
            oom_killed=message.collected.oom_killed,
        ),
        kill_requested=message.kill_requested,
        attempts=message.attempts,
        image=message.image or message.spec.image,
        attempt_history=tuple(attempt_from_pb(attempt) for attempt in message.attempt_history),
    )


def attempt_from_pb(message: pb.Attempt) -> Attempt:
    return Attempt(
        number=message.number,
        status=status_from_pb(message.status),
        ended_at=_optional_time(message, "ended_at"),
        started_at=_optional_time(message, "started_at"),
        return_code=message.return_code if message.HasField("return_code") else None,
        reason=message.reason,
        owner=message.owner,
    )


@decoder
def event_from_pb(message: pb.AttachEvent) -> Event:
    kind = message.WhichOneof("event")
    if kind == "output":
        return Output(_STREAMS[message.output.stream], message.output.offset, message.output.data)
    if kind == "status":
        return StatusChange(status_from_pb(message.status.status), message.status.reason)
    if kind == "exit":
        exit_event = message.exit
        code = exit_event.return_code if exit_event.HasField("return_code") else None
        return Exit(status_from_pb(exit_event.status), code, exit_event.reason)
    raise ValueError(f"unknown attach event {kind!r}")


# -- saved jobs and schedules ------------------------------------------------------------


@decoder
def saved_job_from_pb(message: spb.SavedJob) -> SavedJob:
    return SavedJob(
        message.name, message.version, message.description, _time(message.created_at), spec_from_pb(message.spec)
    )


def schedule_spec_to_pb(spec: ScheduleSpec) -> spb.ScheduleSpec:
    message = spb.ScheduleSpec(
        name=spec.name,
        cron=spec.cron,
        timezone=spec.timezone,
        saved_job_version=spec.saved_job_version,
        overlap=OVERLAP_TO_PB[spec.overlap],
        catchup=CATCHUP_TO_PB[spec.catchup],
        description=spec.description,
    )
    if spec.saved_job is not None:
        message.saved_job = spec.saved_job
    if spec.job is not None:
        message.job.CopyFrom(spec_to_pb(spec.job))
    message.jitter.FromTimedelta(timedelta(seconds=spec.jitter))
    message.catchup_window.FromTimedelta(timedelta(seconds=spec.catchup_window))
    for name, moment in (("start_at", spec.start_at), ("end_at", spec.end_at)):
        if moment is not None:
            getattr(message, name).FromDatetime(moment.astimezone(UTC))
    return message


@decoder
def schedule_spec_from_pb(message: spb.ScheduleSpec) -> ScheduleSpec:
    target = message.WhichOneof("target")
    return ScheduleSpec(
        name=message.name,
        cron=message.cron,
        timezone=message.timezone or "UTC",
        saved_job=message.saved_job if target == "saved_job" else None,
        job=spec_from_pb(message.job) if target == "job" else None,
        saved_job_version=message.saved_job_version,
        jitter=message.jitter.ToTimedelta().total_seconds(),
        start_at=_optional_time(message, "start_at"),
        end_at=_optional_time(message, "end_at"),
        overlap=_OVERLAP_FROM_PB.get(message.overlap, "skip"),  # type: ignore[arg-type]
        catchup=_CATCHUP_FROM_PB.get(message.catchup, "run_once"),  # type: ignore[arg-type]
        catchup_window=message.catchup_window.ToTimedelta().total_seconds() or 3600.0,
        description=message.description,
    )


@decoder
def fire_from_pb(message: spb.Fire) -> Fire:
    return Fire(
        _time(message.scheduled_at),
        _time(message.due_at),
        _time(message.recorded_at),
        _OUTCOMES.get(message.outcome, "unknown"),
        message.job_id or None,
        message.job_status,
        message.reason,
        message.manual,
    )


@decoder
def schedule_from_pb(message: spb.Schedule) -> Schedule:
    return Schedule(
        message.id,
        message.spec.name,
        message.paused,
        _optional_time(message, "next_fire_at"),
        fire_from_pb(message.last_fire) if message.HasField("last_fire") else None,
        schedule_spec_from_pb(message.spec),
        _optional_time(message, "updated_at"),
    )


# -- volumes -----------------------------------------------------------------------------


@decoder
def volume_from_pb(message: vpb.Volume) -> Volume:
    return Volume(
        message.name, _optional_time(message, "created_at"), message.size_bytes, message.mount_path, message.description
    )


@decoder
def volume_file_from_pb(message: vpb.FileEntry) -> VolumeFile:
    return VolumeFile(
        message.path, message.directory, message.size_bytes, message.mode, _optional_time(message, "modified_at")
    )


# -- secrets -----------------------------------------------------------------------------


@decoder
def secret_from_pb(message: secpb.Secret) -> Secret:
    return Secret(message.name, _optional_time(message, "created_at"), _optional_time(message, "updated_at"))
