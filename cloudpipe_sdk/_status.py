"""Job statuses as the SDK shows them."""

from __future__ import annotations

import enum

from cloudpipe_proto.v1 import jobs_pb2 as pb


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


_FROM_PB = {
    pb.JOB_STATUS_WAITING: JobStatus.WAITING,
    pb.JOB_STATUS_QUEUED: JobStatus.QUEUED,
    pb.JOB_STATUS_PROCESSING: JobStatus.PROCESSING,
    pb.JOB_STATUS_DONE: JobStatus.DONE,
    pb.JOB_STATUS_ERROR: JobStatus.ERROR,
    pb.JOB_STATUS_KILLED: JobStatus.KILLED,
    pb.JOB_STATUS_STALLED: JobStatus.STALLED,
}


def status_from_pb(value: int) -> JobStatus:
    return _FROM_PB[value]  # type: ignore[index]
