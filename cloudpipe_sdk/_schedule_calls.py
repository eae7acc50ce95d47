"""The SavedJobService and ScheduleService calls, as `Rpc`s and `Plan`s both clients
run, and `schedule_spec`, the one builder of schedule definitions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloudpipe_proto.v1 import jobs_pb2 as jobs_pb
from cloudpipe_proto.v1 import schedules_pb2 as pb
from cloudpipe_sdk._compat import UTC
from cloudpipe_sdk._convert import fire_from_pb, saved_job_from_pb, schedule_from_pb, schedule_spec_to_pb, spec_to_pb
from cloudpipe_sdk._errors import InvalidRequest, NotFound
from cloudpipe_sdk._options import JobOptions, memory_bytes
from cloudpipe_sdk._rpc import Plan, Rpc
from cloudpipe_sdk._serialize import dump_call, load_call
from cloudpipe_sdk._types import CATCHUPS, OVERLAPS, Fire, JobSpec, SavedJob, Schedule, ScheduleSpec

# -- saved jobs --------------------------------------------------------------------------


def create_saved_job(name: str, spec: JobSpec, description: str = "") -> Rpc[SavedJob]:
    request = pb.CreateSavedJobRequest(name=name, spec=spec_to_pb(spec), description=description)
    return Rpc("saved_jobs", "Create", request, saved_job_from_pb, retry=False)


def update_saved_job(name: str, spec: JobSpec, description: str = "") -> Rpc[SavedJob]:
    request = pb.UpdateSavedJobRequest(name=name, spec=spec_to_pb(spec), description=description)
    return Rpc("saved_jobs", "Update", request, saved_job_from_pb, retry=False)


def get_saved_job(name: str, version: int = 0) -> Rpc[SavedJob]:
    return Rpc("saved_jobs", "Get", pb.GetSavedJobRequest(name=name, version=version), saved_job_from_pb)


def list_saved_jobs() -> Rpc[list[SavedJob]]:
    return Rpc("saved_jobs", "List", pb.ListSavedJobsRequest(), lambda r: [saved_job_from_pb(s) for s in r.saved_jobs])


def delete_saved_job(name: str) -> Rpc[None]:
    return Rpc("saved_jobs", "Delete", pb.DeleteSavedJobRequest(name=name), _nothing, retry=False)


def save(name: str, spec: JobSpec, description: str = "") -> Plan[SavedJob]:
    """Create, or store a new version when `spec` or `description` changed."""
    stored: SavedJob
    try:
        stored = yield get_saved_job(name)
    except NotFound:
        stored = yield create_saved_job(name, spec, description)
        return stored
    if stored.spec != spec or stored.description != description:
        stored = yield update_saved_job(name, spec, description)
    return stored


def run_saved_job(
    name: str,
    *,
    version: int = 0,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    image: str | None = None,
    cpus: float | None = None,
    memory: int | str | None = None,
    timeout: float | None = None,
    idempotency_key: str | None = None,
) -> Plan[int]:
    """Run a saved job with overrides (see `SavedJobs.run`); the job's id."""
    overrides = pb.RunOverrides(
        env=dict(env or {}),
        image=image or "",
        resources=jobs_pb.Resources(cpus=cpus or 0.0, memory_bytes=memory_bytes(memory)),
    )
    if timeout is not None:
        overrides.max_runtime.FromTimedelta(timedelta(seconds=timeout))
    if stdin is not None:
        overrides.stdin = stdin
    if args or kwargs:
        saved: SavedJob = yield get_saved_job(name, version)
        version = saved.version
        if saved.is_function:
            fn = load_call(saved.spec.stdin, saved.spec.serializer)[0]
            overrides.stdin = dump_call(fn, tuple(args), dict(kwargs or {}), saved.spec.serializer)
        else:
            overrides.args.extend(str(a) for a in args)
    request = pb.RunSavedJobRequest(
        name=name, version=version, overrides=overrides, idempotency_key=idempotency_key or ""
    )
    job_id: int = yield Rpc("saved_jobs", "Run", request, lambda r: int(r.job_id), retry=False)
    return job_id


# -- schedules ---------------------------------------------------------------------------


def schedule_spec(
    name: str,
    cron: str,
    *,
    saved_job: str | None = None,
    version: int = 0,
    job: JobSpec | None = None,
    timezone: str = "UTC",
    jitter: float = 0.0,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    overlap: str = "skip",
    catchup: str = "run_once",
    catchup_window: float = 3600.0,
    description: str = "",
) -> ScheduleSpec:
    """A schedule definition. Run `saved_job` (at `version`, 0 = the latest at each
    fire) or an inline `job` (a `JobSpec`, as `JobOptions(...).shell_spec(cmd)` builds
    it; `Schedules.create(..., cmd=...)` builds it for you). `jitter` and `catchup_window` are in seconds;
    `overlap` is skip, allow, buffer_one or cancel_previous; `catchup` is skip,
    run_once or run_all."""
    if overlap not in OVERLAPS or catchup not in CATCHUPS:
        raise InvalidRequest(f"overlap must be one of {', '.join(OVERLAPS)} and catchup one of {', '.join(CATCHUPS)}")
    return ScheduleSpec(
        name=name,
        cron=cron,
        timezone=timezone,
        saved_job=saved_job,
        job=job,
        saved_job_version=version,
        jitter=float(jitter),
        start_at=start_at.astimezone(UTC) if start_at is not None else None,
        end_at=end_at.astimezone(UTC) if end_at is not None else None,
        overlap=overlap,
        catchup=catchup,
        catchup_window=float(catchup_window),
        description=description,
    )


# Job options an inline schedule job takes (`cmd=` and these): those of `Client.shell`.
INLINE_JOB_OPTIONS = frozenset(
    {
        "image",
        "cpus",
        "memory",
        "timeout",
        "env",
        "tags",
        "network",
        "restartable",
        "fresh_container",
        "volumes",
        "secrets",
        "inputs",
        "outputs",
        "storage_secret",
    }
)


def inline_job(options: JobOptions, given: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of `schedule_spec` from those of `Schedules.create`: `cmd` (with
    `stdin` and job options such as `image`, `env`, `timeout`, `memory`) becomes the
    inline `job`, built with `options` as `Client.shell` builds its jobs. Raises
    InvalidRequest for job options without `cmd`, or `cmd` with `job` or `saved_job`."""
    rest = dict(given)
    cmd, stdin = rest.pop("cmd", None), rest.pop("stdin", None)
    job_options = {key: rest.pop(key) for key in list(rest) if key in INLINE_JOB_OPTIONS}
    if cmd is None:
        if job_options or stdin is not None:
            named = ", ".join(sorted([*job_options, *(["stdin"] if stdin is not None else [])]))
            raise InvalidRequest(
                f"{named}: options of an inline job (cmd=...); a saved job's are its own "
                "(change them with saved_jobs.save_shell, or per run with saved_jobs.run)"
            )
        return rest
    if rest.get("job") is not None or rest.get("saved_job"):
        raise InvalidRequest("give one of cmd=, job= and saved_job=")
    rest["job"] = options.merged(**job_options).shell_spec(cmd, stdin=stdin)
    return rest


def create_schedule(spec: ScheduleSpec) -> Rpc[Schedule]:
    request = pb.CreateScheduleRequest(spec=schedule_spec_to_pb(spec))
    return Rpc("schedules", "Create", request, schedule_from_pb, retry=False)


def update_schedule(name: str, spec: ScheduleSpec) -> Rpc[Schedule]:
    request = pb.UpdateScheduleRequest(name=name, spec=schedule_spec_to_pb(spec))
    return Rpc("schedules", "Update", request, schedule_from_pb, retry=False)


def get_schedule(name: str) -> Rpc[Schedule]:
    return Rpc("schedules", "Get", pb.GetScheduleRequest(name=name), schedule_from_pb)


def list_schedules() -> Rpc[list[Schedule]]:
    return Rpc("schedules", "List", pb.ListSchedulesRequest(), lambda r: [schedule_from_pb(s) for s in r.schedules])


def delete_schedule(name: str) -> Rpc[None]:
    return Rpc("schedules", "Delete", pb.DeleteScheduleRequest(name=name), _nothing, retry=False)


def pause_schedule(name: str) -> Rpc[Schedule]:
    return Rpc("schedules", "Pause", pb.PauseScheduleRequest(name=name), schedule_from_pb)


def resume_schedule(name: str) -> Rpc[Schedule]:
    return Rpc("schedules", "Resume", pb.ResumeScheduleRequest(name=name), schedule_from_pb)


def trigger_schedule(name: str) -> Rpc[Fire]:
    return Rpc("schedules", "Trigger", pb.TriggerScheduleRequest(name=name), fire_from_pb, retry=False)


def preview_schedule(name: str, count: int = 10, after: datetime | None = None) -> Rpc[list[datetime]]:
    request = pb.PreviewScheduleRequest(name=name, count=count)
    if after is not None:
        request.after.FromDatetime(after.astimezone(UTC))
    return Rpc("schedules", "Preview", request, lambda r: [t.due_at.ToDatetime(UTC) for t in r.times])


def validate_schedule(spec: ScheduleSpec) -> Rpc[None]:
    """The server's checks of a definition, storing nothing (a Preview of the spec):
    InvalidRequest / NotFound naming the field when it would be refused."""
    request = pb.PreviewScheduleRequest(spec=schedule_spec_to_pb(spec), count=1)
    return Rpc("schedules", "Preview", request, _nothing)


def schedule_history(name: str, limit: int = 20) -> Rpc[list[Fire]]:
    request = pb.ScheduleHistoryRequest(name=name, limit=limit)
    return Rpc("schedules", "History", request, lambda r: [fire_from_pb(f) for f in r.fires])


def put_schedule(spec: ScheduleSpec) -> Plan[Schedule]:
    """Create the schedule, or replace the definition of the one of that name."""
    schedule: Schedule
    try:
        yield get_schedule(spec.name)
    except NotFound:
        schedule = yield create_schedule(spec)
    else:
        schedule = yield update_schedule(spec.name, spec)
    return schedule


def schedule_function(
    fn: Callable[..., Any], cron: str, options: JobOptions, *, name: str | None = None, **schedule: Any
) -> Plan[Schedule]:
    """Save `fn` (called without arguments) as a saved job and run it on `cron`; both
    named after the function unless `name` is given."""
    label = name or fn.__name__.replace("_", "-")
    yield from save(label, options.function_spec(fn, (), {}))
    return (yield from put_schedule(schedule_spec(label, cron, saved_job=label, **schedule)))


# -- apply -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedJobEntry:
    """A saved job of one apply: `expected_version` is its latest version as read (0:
    it did not exist)."""

    name: str
    spec: JobSpec
    description: str
    expected_version: int


@dataclass(frozen=True)
class ScheduleEntry:
    """A schedule of one apply: `expected_updated_at` as read (None: it did not exist)."""

    spec: ScheduleSpec
    expected_updated_at: datetime | None


def apply(
    saved_jobs: Sequence[SavedJobEntry], schedules: Sequence[ScheduleEntry]
) -> Rpc[tuple[list[SavedJob], list[Schedule]]]:
    """One ScheduleService.Apply: every entry stored, or none (FAILED_PRECONDITION when
    one changed since it was read)."""
    request = pb.ApplyRequest(
        saved_jobs=[
            pb.ApplySavedJob(
                name=job.name,
                spec=spec_to_pb(job.spec),
                description=job.description,
                expected_version=job.expected_version,
            )
            for job in saved_jobs
        ],
        schedules=[_apply_schedule(entry) for entry in schedules],
    )

    def decode(response: pb.ApplyResponse) -> tuple[list[SavedJob], list[Schedule]]:
        return [saved_job_from_pb(s) for s in response.saved_jobs], [schedule_from_pb(s) for s in response.schedules]

    return Rpc("schedules", "Apply", request, decode, retry=False)


def _apply_saved_job(job: SavedJobEntry) -> pb.ApplySavedJob:
    spec = spec_to_pb(job.spec)
    return pb.ApplySavedJob(
        name=job.name, spec=spec, description=job.description, expected_version=job.expected_version
    )


def _apply_schedule(entry: ScheduleEntry) -> pb.ApplySchedule:
    message = pb.ApplySchedule(spec=schedule_spec_to_pb(entry.spec))
    if entry.expected_updated_at is not None:
        message.expected_updated_at.FromDatetime(entry.expected_updated_at)
    return message


def _nothing(_: object) -> None:
    return None
