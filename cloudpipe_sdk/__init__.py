"""Cloudpipe Python SDK: run shell commands and Python functions in containers.

Example::

    from cloudpipe_sdk import Client

    client = Client()                      # CLOUDPIPE_ADDRESS, CLOUDPIPE_API_KEY, config profiles
    client.shell("echo hello").result()    # b"hello\\n"
    client.submit(lambda x: x * 2, 21).result(timeout=60)   # 42
    list(client.map(abs, [-1, -2]))        # [1, 2]

See docs/sdk.md for the guide.
"""

from cloudpipe_sdk._aio import AsyncClient, AsyncJob
from cloudpipe_sdk._client import Client
from cloudpipe_sdk._errors import (
    AlreadyExists,
    AuthError,
    CloudpipeError,
    InvalidRequest,
    JobFailed,
    JobKilled,
    JobStalled,
    NotFound,
    RemoteTraceback,
    Timeout,
    Unavailable,
)
from cloudpipe_sdk._executor import CloudpipeExecutor, JobFuture
from cloudpipe_sdk._function import RemoteFunction
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._options import JobOptions
from cloudpipe_sdk._schedule_types import Fire, SavedJob, Schedule
from cloudpipe_sdk._schedules import SavedJobs, Schedules
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._stream import Attachment, Event, Exit, Output, StatusChange
from cloudpipe_sdk._waiting import DoneAndNotDone, as_completed, wait

__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "AsyncJob",
    "Attachment",
    "AuthError",
    "Client",
    "CloudpipeError",
    "CloudpipeExecutor",
    "DoneAndNotDone",
    "Event",
    "Exit",
    "Fire",
    "InvalidRequest",
    "Job",
    "JobFailed",
    "JobFuture",
    "JobKilled",
    "JobOptions",
    "JobStalled",
    "JobStatus",
    "NotFound",
    "Output",
    "RemoteFunction",
    "RemoteTraceback",
    "SavedJob",
    "SavedJobs",
    "Schedule",
    "Schedules",
    "StatusChange",
    "Timeout",
    "Unavailable",
    "as_completed",
    "wait",
]
