"""Protobuf <-> domain: the only module that knows both."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import (
    Attempt,
    Collected,
    Job,
    JobQuery,
    JobSpec,
    JobStatus,
    OutputChunk,
    Resources,
    ResultType,
    Stream,
)

STATUS_TO_PB: dict[JobStatus, int] = {
    JobStatus.WAITING: pb.JOB_STATUS_WAITING,
    JobStatus.QUEUED: pb.JOB_STATUS_QUEUED,
    JobStatus.PROCESSING: pb.JOB_STATUS_PROCESSING,
    JobStatus.DONE: pb.JOB_STATUS_DONE,
    JobStatus.ERROR: pb.JOB_STATUS_ERROR,
    JobStatus.KILLED: pb.JOB_STATUS_KILLED,
    JobStatus.STALLED: pb.JOB_STATUS_STALLED,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_TO_PB.items()}


def status_from_pb(value: int, where: str) -> JobStatus:
    try:
        return STATUS_FROM_PB[value]
    except KeyError:
        raise InvalidArgument(f"{where}: unknown job status {value}") from None


def result_type_from_pb(value: int, where: str) -> ResultType:
    if value in (pb.RESULT_TYPE_UNSPECIFIED, pb.RESULT_TYPE_BINARY):
        return ResultType.BINARY
    if value == pb.RESULT_TYPE_PICKLE:
        return ResultType.PICKLE
    raise InvalidArgument(f"{where}.result_type: unknown result type {value}")


def duration_from_pb(value: Duration, field: str) -> timedelta:
    """A Duration as a timedelta; InvalidArgument naming `field` for one that is not a
    valid Duration (nanos out of range or of the other sign) or too large for Python."""
    nanos_ok = -999_999_999 <= value.nanos <= 999_999_999 and not (
        (value.seconds > 0 and value.nanos < 0) or (value.seconds < 0 and value.nanos > 0)
    )
    try:
        if not nanos_ok:
            raise ValueError(f"nanos {value.nanos} do not fit seconds {value.seconds}")
        return value.ToTimedelta()
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(f"{field}: not a valid duration: {exc}") from None


def timestamp_from_pb(value: Timestamp, field: str) -> datetime:
    """A Timestamp as an aware UTC datetime; InvalidArgument naming `field` for one out of
    the Timestamp range (years 1 to 9999, nanos 0 to 999999999)."""
    try:
        return value.ToDatetime(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(f"{field}: not a valid timestamp: {exc}") from None


def spec_from_pb(msg: pb.JobSpec, where: str = "job") -> JobSpec:
    max_runtime = duration_from_pb(msg.max_runtime, f"{where}.max_runtime") if msg.HasField("max_runtime") else None
    return JobSpec(
        cmd=msg.cmd,
        name=msg.name,
        image=msg.image,
        stdin=msg.stdin,
        env=dict(msg.env),
        tags=dict(msg.tags),
        result_source=msg.result_source or "stdout",
        result_type=result_type_from_pb(msg.result_type, where),
        max_runtime=max_runtime if max_runtime else None,
        restartable=msg.restartable,
        depends_on=tuple(msg.depends_on),
        resources=Resources(cpus=msg.resources.cpus, memory_bytes=msg.resources.memory_bytes, pids=msg.resources.pids),
        network=msg.network,
        core=msg.core,
        multicore=msg.multicore,
        profile=msg.profile,
        volumes=tuple(msg.volumes),
        serializer=msg.serializer,
        client_python=msg.client_python,
        interactive=msg.interactive,
        idempotency_key=msg.idempotency_key,
        fresh_container=msg.fresh_container,
        secrets=tuple(msg.secrets),
        inputs=dict(msg.inputs),
        outputs=dict(msg.outputs),
        storage_secret=msg.storage_secret,
        tty=msg.tty,
    )


def spec_to_pb(spec: JobSpec) -> pb.JobSpec:
    msg = pb.JobSpec(
        cmd=spec.cmd,
        name=spec.name,
        image=spec.image,
        stdin=spec.stdin,
        env=dict(spec.env),
        tags=dict(spec.tags),
        result_source=spec.result_source,
        result_type=pb.RESULT_TYPE_PICKLE if spec.result_type is ResultType.PICKLE else pb.RESULT_TYPE_BINARY,
        restartable=spec.restartable,
        depends_on=list(spec.depends_on),
        resources=pb.Resources(
            cpus=spec.resources.cpus, memory_bytes=spec.resources.memory_bytes, pids=spec.resources.pids
        ),
        network=spec.network,
        core=spec.core,
        multicore=spec.multicore,
        profile=spec.profile,
        volumes=list(spec.volumes),
        serializer=spec.serializer,
        client_python=spec.client_python,
        interactive=spec.interactive,
        idempotency_key=spec.idempotency_key,
        saved_job=spec.saved_job,
        saved_job_version=spec.saved_job_version,
        schedule_id=spec.schedule_id,
        fresh_container=spec.fresh_container,
        secrets=list(spec.secrets),
        inputs=dict(spec.inputs),
        outputs=dict(spec.outputs),
        storage_secret=spec.storage_secret,
        tty=spec.tty,
    )
    if spec.max_runtime is not None:
        msg.max_runtime.CopyFrom(_duration(spec.max_runtime))
    return msg


def job_to_pb(job: Job, default_image: str = "", attempts: Sequence[Attempt] = ()) -> pb.Job:
    """The job on the wire; `image` is its spec's image, else `default_image`;
    `attempt_history` holds `attempts` (Get's answer gives them, List's none)."""
    msg = pb.Job(
        id=job.id,
        spec=spec_to_pb(job.spec),
        status=STATUS_TO_PB[job.status],  # type: ignore[arg-type]
        account=job.account,
        stdout=job.stdout,
        stderr=job.stderr,
        result=job.result,
        reason=job.reason,
        kill_requested=job.kill_requested,
        attempts=job.attempts,
        collected=_collected_to_pb(job.collected),
        image=job.spec.image or default_image,
    )
    msg.created_at.CopyFrom(_timestamp(job.created_at))
    for field, moment in (("started_at", job.started_at), ("finished_at", job.finished_at)):
        if moment is not None:
            getattr(msg, field).CopyFrom(_timestamp(moment))
    for field, span in (
        ("runtime", job.runtime),
        ("queue_delay", job.queue_delay),
        ("overhead_delay", job.overhead_delay),
    ):
        if span is not None:
            getattr(msg, field).CopyFrom(_duration(span))
    if job.return_code is not None:
        msg.return_code = job.return_code
    msg.attempt_history.extend(attempt_to_pb(attempt) for attempt in attempts)
    return msg


def attempt_to_pb(attempt: Attempt) -> pb.Attempt:
    msg = pb.Attempt(
        number=attempt.number,
        status=STATUS_TO_PB[attempt.status],  # type: ignore[arg-type]
        reason=attempt.reason,
        owner=attempt.owner,
    )
    msg.ended_at.CopyFrom(_timestamp(attempt.ended_at))
    if attempt.started_at is not None:
        msg.started_at.CopyFrom(_timestamp(attempt.started_at))
    if attempt.return_code is not None:
        msg.return_code = attempt.return_code
    return msg


def query_from_pb(msg: pb.ListJobsRequest) -> JobQuery:
    return JobQuery(
        ids=tuple(msg.ids),
        names=tuple(msg.names),
        statuses=tuple(status_from_pb(s, "statuses") for s in msg.statuses),
        after_id=msg.after_id,
        before_id=msg.before_id,
        created_after=timestamp_from_pb(msg.created_after, "created_after") if msg.HasField("created_after") else None,
        created_before=(
            timestamp_from_pb(msg.created_before, "created_before") if msg.HasField("created_before") else None
        ),
        limit=msg.limit,
        newest_first=msg.newest_first,
        with_output=with_output(msg.view),
    )


def with_output(view: int) -> bool:
    """Whether a `JobView` (of List or Get) answers the jobs' output."""
    # UNSPECIFIED is FULL: callers written before `view` existed (the multyvac gateway's
    # `GET /v1/job`, older SDKs) expect the output, and must keep getting it.
    if view in (pb.JOB_VIEW_UNSPECIFIED, pb.JOB_VIEW_FULL):
        return True
    if view == pb.JOB_VIEW_SUMMARY:
        return False
    raise InvalidArgument(f"view: unknown job view {view}")


def _collected_to_pb(collected: Collected) -> pb.Collected:
    return pb.Collected(
        cputime_user_ns=collected.cputime_user_ns,
        cputime_system_ns=collected.cputime_system_ns,
        memory_max_usage_bytes=collected.memory_max_usage_bytes,
        memory_failcnt=collected.memory_failcnt,
        oom_killed=collected.oom_killed,
    )


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _duration(span: timedelta) -> Duration:
    value = Duration()
    value.FromTimedelta(span)
    return value


STREAM_TO_PB: dict[Stream, int] = {Stream.STDOUT: pb.OUTPUT_STREAM_STDOUT, Stream.STDERR: pb.OUTPUT_STREAM_STDERR}


def chunk_to_pb(chunk: OutputChunk) -> pb.OutputChunk:
    return pb.OutputChunk(stream=STREAM_TO_PB[chunk.stream], offset=chunk.offset, data=chunk.data)  # type: ignore[arg-type]


def status_event_to_pb(job: Job) -> pb.JobStatusEvent:
    event = pb.JobStatusEvent(id=job.id, status=STATUS_TO_PB[job.status], reason=job.reason)  # type: ignore[arg-type]
    if job.return_code is not None:
        event.return_code = job.return_code
    return event


def exit_event_to_pb(job: Job) -> pb.ExitEvent:
    event = pb.ExitEvent(status=STATUS_TO_PB[job.status], reason=job.reason)  # type: ignore[arg-type]
    if job.return_code is not None:
        event.return_code = job.return_code
    return event
