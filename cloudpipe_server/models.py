"""Domain model of jobs. No protobuf in here: `convert.py` is the only bridge."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class JobStatus(enum.Enum):
    """Lifecycle: waiting -> queued -> processing -> done | error | killed | stalled."""

    WAITING = "waiting"
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"
    KILLED = "killed"
    STALLED = "stalled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.KILLED, JobStatus.STALLED})


class ResultType(enum.Enum):
    """How a client should read `Job.result`; the server never interprets it."""

    BINARY = "binary"
    PICKLE = "pickle"


@dataclass(frozen=True)
class Resources:
    """Container limits; zero means the server default."""

    cpus: float = 0.0
    memory_bytes: int = 0
    pids: int = 0


@dataclass(frozen=True)
class JobSpec:
    """What a user submitted. Validated by `service.validate_spec` before it is stored."""

    cmd: str
    name: str = ""
    image: str = ""
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    result_source: str = "stdout"
    result_type: ResultType = ResultType.BINARY
    max_runtime: timedelta | None = None
    restartable: bool = False
    depends_on: tuple[int, ...] = ()
    resources: Resources = Resources()
    network: bool = False
    core: str = ""
    multicore: int = 0
    profile: bool = False
    volumes: tuple[str, ...] = ()
    serializer: str = ""
    client_python: str = ""
    # Keep stdin open after `stdin` was written, for input typed through Attach.
    interactive: bool = False
    # A retried submit with the same key (per account) returns the same job.
    idempotency_key: str = ""
    # Where the job came from, when it was not submitted directly.
    saved_job: str = ""
    saved_job_version: int = 0
    schedule_id: str = ""
    # Never run in a warm container (one that earlier jobs of the account used).
    fresh_container: bool = False
    # The account's secrets given to the job: "NAME" (an environment variable) or
    # "NAME:/path" (a file); names only, values are resolved when the job starts.
    secrets: tuple[str, ...] = ()
    # Files fetched before the job starts (container path -> URL) and paths uploaded
    # after it ended DONE (a path ending in "/" is a directory), and the account's
    # secret with the object store's credentials for their s3:// URLs (its name only).
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    storage_secret: str = ""
    # A terminal (pty) for the job: implies `interactive` (validate_spec sets it); its
    # output is one stream, stdout. Always a fresh container.
    tty: bool = False

    @property
    def result_path(self) -> str | None:
        """The path of a `file:` result source, or None for stdout."""
        if self.result_source.startswith("file:"):
            return self.result_source[len("file:") :]
        return None


@dataclass(frozen=True)
class Collected:
    """Resource usage read from the container after it ran."""

    cputime_user_ns: int = 0
    cputime_system_ns: int = 0
    memory_max_usage_bytes: int = 0
    memory_failcnt: int = 0
    oom_killed: bool = False


@dataclass
class Job:
    """A stored job: its spec plus everything the server learnt while running it."""

    id: int
    account: str
    spec: JobSpec
    status: JobStatus
    created_at: datetime
    started_at: datetime | None = None
    container_started_at: datetime | None = None
    finished_at: datetime | None = None
    return_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    result: bytes = b""
    reason: str = ""
    collected: Collected = Collected()
    kill_requested: bool = False
    attempts: int = 0
    container_id: str = ""
    lease_owner: str = ""
    lease_expires_at: datetime | None = None
    run_after: datetime | None = None
    # What the job's secrets resolve to, set by the dispatcher for the executor alone:
    # never stored, never answered, never printed (`repr` leaves them out).
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    secret_files: Mapping[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    storage_credentials: bytes = field(default=b"", repr=False, compare=False)  # `storage_secret`'s value

    @property
    def queue_delay(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return self.started_at - self.created_at

    @property
    def overhead_delay(self) -> timedelta | None:
        if self.started_at is None or self.container_started_at is None:
            return None
        return self.container_started_at - self.started_at

    @property
    def runtime(self) -> timedelta | None:
        if self.container_started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.container_started_at


@dataclass(frozen=True)
class Attempt:
    """One ended run of a job (`JobStore.attempts`): its number (the job's `attempts`
    when it was claimed), when it was claimed and when it ended, and how: DONE, ERROR,
    KILLED or STALLED when the job ended with it, QUEUED when its runner was lost and
    the job was requeued for another attempt. `owner` held its lease (a server's
    dispatcher); `reason` is cut to `ATTEMPT_REASON_BYTES` of UTF-8."""

    job_id: int
    number: int
    status: JobStatus
    ended_at: datetime
    started_at: datetime | None = None
    return_code: int | None = None
    reason: str = ""
    owner: str = ""


ATTEMPT_REASON_BYTES = 1024
# An attempt's history keeps the latest ones only (a job retried without end would grow it).
ATTEMPTS_KEPT = 50


class Stream(enum.IntEnum):
    """Output streams, numbered as Docker numbers them."""

    STDOUT = 1
    STDERR = 2


@dataclass(frozen=True)
class OutputChunk:
    """Bytes a job wrote to one stream, at `offset` bytes into that stream."""

    stream: Stream
    offset: int
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the dispatcher records it in the store."""

    status: JobStatus
    finished_at: datetime
    reason: str = ""
    return_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    result: bytes = b""
    collected: Collected = Collected()


@dataclass(frozen=True)
class JobQuery:
    """Filters of `JobStore.list`; empty collections and None mean no filter."""

    ids: tuple[int, ...] = ()
    names: tuple[str, ...] = ()
    statuses: tuple[JobStatus, ...] = ()
    after_id: int = 0
    before_id: int = 0
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 1000
    newest_first: bool = False
    # False: the jobs come without stdout, stderr, result and spec.stdin (a list page).
    # Every store leaves those columns out of its read (a projection), whatever their size.
    with_output: bool = True
