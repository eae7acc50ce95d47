"""Cloudpipe Python SDK: run shell commands and Python functions in containers.

Example::

    from cloudpipe_sdk import Client

    client = Client()                      # CLOUDPIPE_ADDRESS, CLOUDPIPE_API_KEY
    client.shell("echo hello").result()    # b"hello\\n"
    client.submit(lambda x: x * 2, 21).result(timeout=60)   # 42
"""

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._errors import (
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
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._stream import Attachment, Event, Exit, Output, StatusChange

__all__ = [
    "Attachment",
    "AuthError",
    "Client",
    "CloudpipeError",
    "Event",
    "Exit",
    "InvalidRequest",
    "Job",
    "JobFailed",
    "JobKilled",
    "JobStalled",
    "JobStatus",
    "NotFound",
    "Output",
    "RemoteTraceback",
    "StatusChange",
    "Timeout",
    "Unavailable",
]
