"""Job statuses as the SDK shows them."""

from __future__ import annotations

import enum


class JobStatus(enum.Enum):
    """Where a job is in its life. `done`, `error`, `killed` and `stalled` are final."""

    WAITING = "waiting"
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"
    KILLED = "killed"
    STALLED = "stalled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.ERROR, JobStatus.KILLED, JobStatus.STALLED)
