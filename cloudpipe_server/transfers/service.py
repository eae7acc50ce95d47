"""`Transfers`: what the executor calls to fetch a job's inputs and upload its outputs,
holding the configuration and the one checked HTTP client of the server."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import IO

from cloudpipe_server.models import Job
from cloudpipe_server.transfers.base import TransferConfig, TransferFailed
from cloudpipe_server.transfers.credentials import StorageCredentials, parse_credentials
from cloudpipe_server.transfers.fetch import staged_inputs
from cloudpipe_server.transfers.guard import pool_manager
from cloudpipe_server.transfers.upload import OpenArchive, upload_outputs


def wants_transfers(job: Job) -> bool:
    return bool(job.spec.inputs or job.spec.outputs)


class Transfers:
    """Fetches inputs and uploads outputs of jobs (blocking: call from worker threads)."""

    def __init__(self, config: TransferConfig) -> None:
        self.config = config
        self._http = pool_manager(config)

    def staged_inputs(
        self, job: Job, owner: tuple[int, int], cancelled: Callable[[], bool]
    ) -> AbstractContextManager[IO[bytes]]:
        """The job's inputs as a tar to put at "/" (see `fetch.staged_inputs`)."""
        return staged_inputs(job, owner, self._http, self.config, lambda: _credentials(job), cancelled)

    def upload_outputs(self, job: Job, open_archive: OpenArchive, cancelled: Callable[[], bool]) -> int:
        """Upload the job's outputs (see `upload.upload_outputs`)."""
        return upload_outputs(job, open_archive, self._http, self.config, lambda: _credentials(job), cancelled)


def _credentials(job: Job) -> StorageCredentials:
    if not job.spec.storage_secret:
        raise TransferFailed("s3:// URLs need a storage_secret")
    if not job.storage_credentials:
        raise TransferFailed(f"storage secret {job.spec.storage_secret!r} was not given to this run")
    return parse_credentials(job.storage_credentials, job.spec.storage_secret)
