"""Cloudpipe Python SDK: run shell commands and Python functions in containers.

Example::

    from cloudpipe_sdk import Client

    client = Client()                      # CLOUDPIPE_ADDRESS, CLOUDPIPE_API_KEY, config profiles
    client.shell("echo hello").result()    # b"hello\\n"
    client.submit(lambda x: x * 2, 21).result(timeout=60)   # 42
    list(client.map(abs, [-1, -2]))        # [1, 2]

See docs/sdk.md for the guide.
"""

import logging as _logging

from cloudpipe_sdk._aio import AsyncClient
from cloudpipe_sdk._aio_job import AsyncAttachment, AsyncJob
from cloudpipe_sdk._client import Client
from cloudpipe_sdk._errors import (
    AlreadyExists,
    AuthError,
    CloudpipeError,
    ImageBuildFailed,
    InvalidRequest,
    JobFailed,
    JobKilled,
    JobStalled,
    MissingModule,
    NotFound,
    ProtocolError,
    RemoteTraceback,
    ResourceExhausted,
    ServerError,
    Timeout,
    Unavailable,
)
from cloudpipe_sdk._executor import CloudpipeExecutor, JobFuture
from cloudpipe_sdk._function import RemoteFunction
from cloudpipe_sdk._image import Image
from cloudpipe_sdk._images import AsyncImages, Images
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._options import JobOptions
from cloudpipe_sdk._quotas import AccountQuotas, AsyncQuotas, QuotaLimits, Quotas
from cloudpipe_sdk._schedules import AsyncSavedJobs, AsyncSchedules, SavedJobs, Schedules
from cloudpipe_sdk._secrets import AsyncSecrets, Secrets
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._stream import Attachment
from cloudpipe_sdk._types import (
    Attempt,
    BuildLog,
    BuiltImage,
    Event,
    Exit,
    Fire,
    JobSnapshot,
    JobSpec,
    Output,
    ResourceUsage,
    SavedJob,
    Schedule,
    ScheduleSpec,
    Secret,
    StatusChange,
    Volume,
    VolumeFile,
)
from cloudpipe_sdk._volumes import AsyncVolumes, Volumes
from cloudpipe_sdk._waiting import DoneAndNotDone, as_completed, wait

__all__ = [
    "AccountQuotas",
    "AlreadyExists",
    "AsyncAttachment",
    "AsyncClient",
    "AsyncImages",
    "AsyncJob",
    "AsyncQuotas",
    "AsyncSavedJobs",
    "AsyncSchedules",
    "AsyncSecrets",
    "AsyncVolumes",
    "Attachment",
    "Attempt",
    "AuthError",
    "BuildLog",
    "BuiltImage",
    "Client",
    "CloudpipeError",
    "CloudpipeExecutor",
    "DoneAndNotDone",
    "Event",
    "Exit",
    "Fire",
    "Image",
    "ImageBuildFailed",
    "Images",
    "InvalidRequest",
    "Job",
    "JobFailed",
    "JobFuture",
    "JobKilled",
    "JobOptions",
    "JobSnapshot",
    "JobSpec",
    "JobStalled",
    "JobStatus",
    "MissingModule",
    "NotFound",
    "Output",
    "ProtocolError",
    "QuotaLimits",
    "Quotas",
    "RemoteFunction",
    "RemoteTraceback",
    "ResourceExhausted",
    "ResourceUsage",
    "SavedJob",
    "SavedJobs",
    "Schedule",
    "ScheduleSpec",
    "Schedules",
    "Secret",
    "Secrets",
    "ServerError",
    "StatusChange",
    "Timeout",
    "Unavailable",
    "Volume",
    "VolumeFile",
    "Volumes",
    "as_completed",
    "wait",
]

# The SDK logs (reconnection notices, on cloudpipe_sdk.connection) but prints nothing
# unless the program configures logging; the `cloudpipe` CLI shows them on stderr.
_logging.getLogger("cloudpipe_sdk").addHandler(_logging.NullHandler())
