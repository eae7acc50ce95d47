"""The SDK's own data types: what a job is (`JobSpec`), what it was last seen doing
(`JobSnapshot`), saved jobs, schedules and their fires, the events of a live job,
images, volumes and secrets. All are frozen dataclasses; the protobuf messages they come from
stay inside the SDK (`cloudpipe_sdk._convert` is the bridge).

Example::

    job = client.shell("echo hi", name="greeting")
    job.result()
    job.snapshot.spec.name          # "greeting"
    job.snapshot.status             # JobStatus.DONE
    job.snapshot.stdout             # b"hi\\n"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cloudpipe_sdk._status import JobStatus

ResultType = Literal["binary", "pickle"]
StreamName = Literal["stdout", "stderr"]
Overlap = Literal["skip", "allow", "buffer_one", "cancel_previous"]
Catchup = Literal["skip", "run_once", "run_all"]
OVERLAPS: tuple[Overlap, ...] = ("skip", "allow", "buffer_one", "cancel_previous")
CATCHUPS: tuple[Catchup, ...] = ("skip", "run_once", "run_all")


@dataclass(frozen=True)
class JobSpec:
    """What a job runs and how: as submitted, saved or scheduled. `JobOptions` builds
    them (`client.shell`, `client.submit`, saved jobs, schedules and `cloudpipe apply`
    all use it); zero values mean the server's default.

    `timeout` is the longest run time in seconds (None: the server's); `memory` is in
    bytes; `serializer` and `client_python` are set for Python function jobs (whose
    pickled call is `stdin`); `saved_job`, `saved_job_version` and `schedule_id` are
    set by the server for runs of saved jobs and schedules. `volumes` are the wire's
    mount entries, "NAME:/path" or "NAME:/path:ro" (`JobOptions(volumes=...)` makes
    them; a bare name is multyvac's and mounts nothing). `secrets` are the wire's
    entries too, names only: "NAME" (an environment variable) or "NAME:/path" (a file);
    `JobOptions(secrets=...)` makes them, and no value is ever in a spec. `tty` gives
    the job a terminal (it is then `interactive` too, and its output is one stream,
    stdout). `inputs` and `outputs` map container paths to URLs (fetched before the job
    starts, uploaded after it ended DONE), `storage_secret` names the secret with the
    object store's credentials for their s3:// URLs.
    """

    cmd: str
    name: str = ""
    image: str = ""
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    result_source: str = "stdout"
    result_type: ResultType = "binary"
    timeout: float | None = None
    cpus: float = 0.0
    memory: int = 0
    network: bool = False
    restartable: bool = False
    fresh_container: bool = False
    interactive: bool = False
    tty: bool = False
    depends_on: tuple[int, ...] = ()
    volumes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    storage_secret: str = ""
    serializer: str = ""
    client_python: str = ""
    idempotency_key: str = ""
    saved_job: str = ""
    saved_job_version: int = 0
    schedule_id: str = ""

    @property
    def is_function(self) -> bool:
        """Whether this is a Python function job (a pickled call on stdin)."""
        return bool(self.serializer)


@dataclass(frozen=True)
class ResourceUsage:
    """What the container used, as the engine sampled it (zeros until measured)."""

    cputime_user_ns: int = 0
    cputime_system_ns: int = 0
    memory_max_usage_bytes: int = 0
    memory_failcnt: int = 0
    oom_killed: bool = False


@dataclass(frozen=True)
class Attempt:
    """One ended run of a job (`JobSnapshot.attempt_history`): its `number` (1 for the
    first run), how it ended (`status`: DONE, ERROR, KILLED or STALLED when the job
    ended with it; QUEUED when its runner was lost and the job was requeued), when it
    started and ended (UTC), its exit code when the container exited, why it ended
    (`reason`, at most 1 KiB) and the server that ran it (`owner`)."""

    number: int
    status: JobStatus
    ended_at: datetime | None = None
    started_at: datetime | None = None
    return_code: int | None = None
    reason: str = ""
    owner: str = ""


@dataclass(frozen=True)
class JobSnapshot:
    """A job as the server last described it. Times are UTC; `return_code` is None
    until the container exited; `runtime` is the container's run time once it ended,
    `queue_delay` the wait before it started, `overhead_delay` the container's create
    and start; `collected` what it used; `image` the image it runs in (the server's
    default when the spec names none). `attempts` counts its runs so far (a lost runner's
    job may be run again); `attempt_history` holds the ended ones, oldest first (the
    latest 50), as `client.get` reads them: a snapshot from a list has none."""

    id: int
    status: JobStatus
    spec: JobSpec
    account: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    return_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    result: bytes = b""
    reason: str = ""
    runtime: timedelta | None = None
    queue_delay: timedelta | None = None
    overhead_delay: timedelta | None = None
    collected: ResourceUsage = field(default_factory=ResourceUsage)
    kill_requested: bool = False
    attempts: int = 0
    image: str = ""
    attempt_history: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class SavedJob:
    """One version of a saved job. `spec` is the stored job spec."""

    name: str
    version: int
    description: str
    created_at: datetime
    spec: JobSpec

    @property
    def is_function(self) -> bool:
        return self.spec.is_function


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule's definition: run `saved_job` (at `saved_job_version`, 0 = the latest
    at each fire) or the inline `job` at the times of `cron` in `timezone`. `jitter` and
    `catchup_window` are in seconds. Build one with `client.schedules.spec(...)`."""

    name: str
    cron: str
    timezone: str = "UTC"
    saved_job: str | None = None
    job: JobSpec | None = None
    saved_job_version: int = 0
    jitter: float = 0.0
    start_at: datetime | None = None
    end_at: datetime | None = None
    overlap: Overlap = "skip"
    catchup: Catchup = "run_once"
    catchup_window: float = 3600.0
    description: str = ""


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


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored. `spec` is the definition; `next_fire_at` is None once it
    has ended."""

    id: str
    name: str
    paused: bool
    next_fire_at: datetime | None
    last_fire: Fire | None
    spec: ScheduleSpec
    # When the definition last changed (apply writes only if it still has this value).
    updated_at: datetime | None = None


# -- events of a live job (Job.stream(), Job.attach()) ---------------------------------


@dataclass(frozen=True)
class Output:
    """Bytes the job wrote to `stream`, starting `offset` bytes into it."""

    stream: StreamName
    offset: int
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True)
class StatusChange:
    status: JobStatus
    reason: str


@dataclass(frozen=True)
class Exit:
    """The job ended; always the last event of a stream."""

    status: JobStatus
    return_code: int | None
    reason: str


Event = Output | StatusChange | Exit


@dataclass(frozen=True)
class BuiltImage:
    """An image the server built: `reference` is what jobs name (`image=`); `cached`
    when it was built before (by an earlier or a concurrent request)."""

    reference: str
    digest: str
    summary: str = ""
    size_bytes: int = 0
    created_at: datetime | None = None
    cached: bool = False


@dataclass(frozen=True)
class BuildLog:
    """A line of a build log; `step` of `steps` (1-based; 0: the server's own setup)."""

    line: str
    step: int
    steps: int


@dataclass(frozen=True)
class Volume:
    """One of your account's volumes. `size_bytes` is counted by `volumes.get` only (0
    from `create` and `list`). `mount_path`, given at creation, is where multyvac jobs
    that name the volume mount it ("" for none); SDK jobs always say where."""

    name: str
    created_at: datetime | None
    size_bytes: int = 0
    mount_path: str = ""
    description: str = ""


@dataclass(frozen=True)
class VolumeFile:
    """A file or directory in a volume: `path` is relative to the volume's top; `mode`
    its permission bits (0o644...)."""

    path: str
    directory: bool
    size_bytes: int
    mode: int
    modified_at: datetime | None


@dataclass(frozen=True)
class Secret:
    """One of your account's secrets, as the server answers it: its name and times,
    never its value (`created_at` is kept when `secrets.set` replaces the value;
    `updated_at` says when it last did)."""

    name: str
    created_at: datetime | None
    updated_at: datetime | None
