"""Cloudpipe Python SDK: run shell commands and Python functions in containers.

Example::

    from cloudpipe_sdk import Client

    client = Client()                      # CLOUDPIPE_ADDRESS, CLOUDPIPE_API_KEY
    client.shell("echo hello").result()    # b"hello\\n"
    client.submit(lambda x: x * 2, 21).result(timeout=60)   # 42
"""

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
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._schedule_types import Fire, SavedJob, Schedule
from cloudpipe_sdk._schedules import SavedJobs, Schedules
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._stream import Attachment, Event, Exit, Output, StatusChange

__all__ = [
    "AlreadyExists",
    "Attachment",
    "AuthError",
    "Client",
    "CloudpipeError",
    "Event",
    "Exit",
    "Fire",
    "InvalidRequest",
    "Job",
    "JobFailed",
    "JobKilled",
    "JobStalled",
    "JobStatus",
    "NotFound",
    "Output",
    "RemoteTraceback",
    "SavedJob",
    "SavedJobs",
    "Schedule",
    "Schedules",
    "StatusChange",
    "Timeout",
    "Unavailable",
]
