"""Domain model of saved jobs, schedules and their fires. No protobuf in here:
`convert_schedules.py` is the only bridge."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloudpipe_server.models import JobSpec

DEFAULT_TIMEZONE = "UTC"
DEFAULT_CATCHUP_WINDOW = timedelta(hours=1)


class OverlapPolicy(enum.Enum):
    """What a fire does while a run of the same schedule is still going."""

    SKIP = "skip"  # do not run; the fire is recorded as skipped
    ALLOW = "allow"  # run anyway, side by side
    BUFFER_ONE = "buffer_one"  # run after the previous run ends; at most one waits, later fires are skipped
    CANCEL_PREVIOUS = "cancel_previous"  # kill the running job(s), then run


class CatchupPolicy(enum.Enum):
    """What happens to fires missed while no scheduler ran (see `policies.plan_catchup`)."""

    SKIP = "skip"  # none of them run
    RUN_ONCE = "run_once"  # only the latest missed fire runs
    RUN_ALL = "run_all"  # every missed fire within the catch-up window runs


class FireOutcome(enum.Enum):
    """Lifecycle of a fire: pending -> running -> finished, or buffered -> pending,
    or skipped / failed straight away."""

    PENDING = "pending"  # recorded; its job is being submitted (or the submitter crashed)
    BUFFERED = "buffered"  # waits for the previous run to end (overlap: buffer_one)
    RUNNING = "running"  # its job was submitted and was not seen finished yet
    FINISHED = "finished"  # its job ended; `job_status` says how
    SKIPPED = "skipped"  # deliberately not run; `reason` says why
    FAILED = "failed"  # could not be submitted (saved job deleted, invalid spec...); `reason` says why

    @property
    def open(self) -> bool:
        return self in OPEN_OUTCOMES


OPEN_OUTCOMES = frozenset({FireOutcome.PENDING, FireOutcome.BUFFERED, FireOutcome.RUNNING})


@dataclass(frozen=True)
class SavedJob:
    """One version of a named job template. Versions start at 1; every update adds one."""

    account: str
    name: str
    version: int
    spec: JobSpec
    created_at: datetime
    description: str = ""

    @property
    def is_function(self) -> bool:
        """A pickled Python function (its `spec.stdin` holds the call), not a shell command."""
        return bool(self.spec.serializer)


@dataclass(frozen=True)
class ScheduleSpec:
    """What a user defines. Exactly one of `saved_job` (with `saved_job_version`, 0 for
    the latest at each fire) and `job` (an inline spec) names what runs."""

    name: str
    cron: str
    timezone: str = DEFAULT_TIMEZONE
    saved_job: str = ""
    saved_job_version: int = 0
    job: JobSpec | None = None
    jitter: timedelta = timedelta(0)
    start_at: datetime | None = None
    end_at: datetime | None = None
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup: CatchupPolicy = CatchupPolicy.RUN_ONCE
    catchup_window: timedelta = DEFAULT_CATCHUP_WINDOW
    description: str = ""


@dataclass(frozen=True)
class Schedule:
    """A stored schedule. `next_fire_at` is the scheduled (nominal) time of the first
    fire not yet decided, `next_due_at` that time plus its jitter: when it is due. Both
    are None once the schedule has ended (past `end_at`)."""

    id: str
    account: str
    spec: ScheduleSpec
    created_at: datetime
    updated_at: datetime
    next_fire_at: datetime | None
    next_due_at: datetime | None
    paused: bool = False
    lease_owner: str = ""
    lease_expires_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cursor(self) -> tuple[datetime, datetime] | None:
        """(next_fire_at, next_due_at), or None once the schedule has ended."""
        if self.next_fire_at is None or self.next_due_at is None:
            return None
        return self.next_fire_at, self.next_due_at


@dataclass(frozen=True)
class SavedJobWrite:
    """A saved job of one apply: version 1 of a new one when `expected_version` is 0
    (the name must be free), else version `expected_version + 1` (which must still be
    the latest version when the apply is written)."""

    name: str
    spec: JobSpec
    description: str = ""
    expected_version: int = 0


@dataclass(frozen=True)
class ScheduleWrite:
    """A schedule of one apply. `expected_updated_at` None: a new schedule, stored as
    `schedule` is (id, cursor, times), its name must be free. Otherwise the existing
    schedule of that name, which must still have that `updated_at`, gets the spec and
    cursor of `schedule` and `updated_at` = now (its id, creation time, pause state and
    fires stay)."""

    schedule: Schedule
    expected_updated_at: datetime | None = None


@dataclass(frozen=True)
class Fire:
    """One fire of a schedule, identified by (`schedule_id`, `scheduled_at`): recorded
    once, whatever number of schedulers run. `scheduled_at` is the nominal cron time
    (the trigger time for a manual fire); `due_at` adds the jitter."""

    schedule_id: str
    scheduled_at: datetime
    account: str
    due_at: datetime
    recorded_at: datetime
    outcome: FireOutcome
    job_id: int | None = None
    job_status: str = ""
    reason: str = ""
    manual: bool = False


@dataclass(frozen=True)
class RunOverrides:
    """What a run of a saved job may replace. `args` are appended to a shell command,
    each shell-quoted; `env` is merged over the saved env; None and empty keep the saved value."""

    args: tuple[str, ...] = ()
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    image: str = ""
    cpus: float = 0.0
    memory_bytes: int = 0
    pids: int = 0
    max_runtime: timedelta | None = None
