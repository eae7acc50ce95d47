"""The engine dropping an output's archive mid-stream is the engine lost, not a failed
upload: its requests error comes out of the upload (the executor re-adopts the job,
as on any engine outage mid-run) instead of a reason that ends the job ERROR."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from cloudpipe_server.executors.docker_transfers import upload_outputs
from cloudpipe_server.models import Job, JobSpec, JobStatus
from cloudpipe_server.transfers.base import TransferConfig
from cloudpipe_server.transfers.service import Transfers

SECRET = b'{"endpoint_url": "http://192.0.2.1:9000", "access_key_id": "a", "secret_access_key": "b"}'


def _tar_head() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("out/big.bin")
        info.size = 1 << 20
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    return data.getvalue()[:4096]  # the header and a little of the file


class _Api:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def get_archive(self, container_id: str, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        def chunks() -> Iterator[bytes]:
            yield _tar_head()
            raise self.failure

        return chunks(), {"mode": 1 << 31}


def _job() -> Job:
    spec = JobSpec(cmd="true", outputs={"/out/": "s3://bucket/run/"}, storage_secret="S3")
    job = Job(id=3, account="me", spec=spec, status=JobStatus.PROCESSING, created_at=datetime.now(UTC))
    job.storage_credentials = SECRET
    return job


@pytest.mark.parametrize(
    "failure",
    [requests.exceptions.ChunkedEncodingError("cut"), requests.exceptions.ConnectionError("gone")],
    ids=["chunked", "connection"],
)
def test_an_archive_cut_by_the_engine_is_the_engine_lost(failure: Exception) -> None:
    transfers = Transfers(TransferConfig(allow_private_addresses=True))
    with pytest.raises(type(failure)):
        upload_outputs(_Api(failure), transfers, _job(), "c0ffee", lambda: False)
