"""What the saved-job and schedule accessors hand out (`SavedJob`, `Schedule`, `Fire`)
and the job specs they build (`shell_spec`, `function_spec`, as `Client.shell` and
`Client.submit` build theirs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudpipe_proto.v1 import jobs_pb2 as jobs_pb
from cloudpipe_proto.v1 import schedules_pb2 as pb
from cloudpipe_sdk._serialize import (
    RESULT_PATH,
    RUNNER_COMMAND,
    SERIALIZER,
    SERIALIZER_VERSION,
    client_python,
    dump_call,
)

OVERLAP = {
    "skip": pb.OVERLAP_POLICY_SKIP,
    "allow": pb.OVERLAP_POLICY_ALLOW,
    "buffer_one": pb.OVERLAP_POLICY_BUFFER_ONE,
    "cancel_previous": pb.OVERLAP_POLICY_CANCEL_PREVIOUS,
}
CATCHUP = {
    "skip": pb.CATCHUP_POLICY_SKIP,
    "run_once": pb.CATCHUP_POLICY_RUN_ONCE,
    "run_all": pb.CATCHUP_POLICY_RUN_ALL,
}
OUTCOMES = {value: name.removeprefix("FIRE_OUTCOME_").lower() for name, value in pb.FireOutcome.items()}


def _time(stamp: Any) -> datetime:
    return stamp.ToDatetime(UTC)  # type: ignore[no-any-return]


def shell_spec(
    cmd: str,
    *,
    image: str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | str | None = None,
    timeout: float | None = None,
    cpus: float | None = None,
    memory: int | None = None,
    network: bool = False,
    name: str | None = None,
) -> jobs_pb.JobSpec:
    """The spec of a shell job, as `Client.shell` builds it."""
    spec = jobs_pb.JobSpec(
        cmd=cmd,
        name=name or "",
        image=image or "",
        stdin=stdin.encode() if isinstance(stdin, str) else (stdin or b""),
        env=dict(env or {}),
        result_source="stdout",
        result_type=jobs_pb.RESULT_TYPE_BINARY,
        network=network,
        resources=jobs_pb.Resources(cpus=cpus or 0.0, memory_bytes=memory or 0),
    )
    if timeout is not None:
        spec.max_runtime.FromTimedelta(timedelta(seconds=timeout))
    return spec


def function_spec(
    fn: Callable[..., Any], args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
) -> jobs_pb.JobSpec:
    """The spec of a function job, as `Client.submit` builds it: the pickled call on
    stdin, this client's Python version recorded."""
    module = getattr(fn, "__module__", None) or "?"
    return jobs_pb.JobSpec(
        cmd=RUNNER_COMMAND,
        stdin=dump_call(fn, tuple(args), dict(kwargs or {})),
        result_source=f"file:{RESULT_PATH}",
        result_type=jobs_pb.RESULT_TYPE_PICKLE,
        serializer=SERIALIZER,
        client_python=client_python(),
        env={"CLOUDPIPE_CLIENT_CLOUDPICKLE": SERIALIZER_VERSION},
        tags={"function": f"{module}.{getattr(fn, '__qualname__', type(fn).__name__)}"[:200]},
    )


@dataclass(frozen=True)
class SavedJob:
    """One version of a saved job. `spec` is the stored job spec."""

    name: str
    version: int
    description: str
    created_at: datetime
    spec: jobs_pb.JobSpec

    @property
    def is_function(self) -> bool:
        return bool(self.spec.serializer)

    @classmethod
    def from_pb(cls, msg: pb.SavedJob) -> SavedJob:
        return cls(msg.name, msg.version, msg.description, _time(msg.created_at), msg.spec)


@dataclass(frozen=True)
class Fire:
    """One fire of a schedule: when, what happened (`outcome`: pending, buffered,
    running, finished, skipped or failed), and its job."""

    scheduled_at: datetime
    due_at: datetime
    recorded_at: datetime
    outcome: str
    job_id: int | None
    job_status: str
    reason: str
    manual: bool

    @classmethod
    def from_pb(cls, msg: pb.Fire) -> Fire:
        return cls(
            _time(msg.scheduled_at),
            _time(msg.due_at),
            _time(msg.recorded_at),
            OUTCOMES.get(msg.outcome, "unknown"),
            msg.job_id or None,
            msg.job_status,
            msg.reason,
            msg.manual,
        )


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored. `spec` is the definition; `next_fire_at` is None once it
    has ended."""

    id: str
    name: str
    paused: bool
    next_fire_at: datetime | None
    last_fire: Fire | None
    spec: pb.ScheduleSpec

    @classmethod
    def from_pb(cls, msg: pb.Schedule) -> Schedule:
        return cls(
            msg.id,
            msg.spec.name,
            msg.paused,
            _time(msg.next_fire_at) if msg.HasField("next_fire_at") else None,
            Fire.from_pb(msg.last_fire) if msg.HasField("last_fire") else None,
            msg.spec,
        )
