"""An upload's bounds on a real S3-compatible server: a kill stops it between files
and mid-file, it gives up past its deadline, and past the cap on files."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO

import pytest

from cloudpipe_server.models import Job, JobSpec, JobStatus
from cloudpipe_server.transfers.base import TransferConfig, TransferFailed
from cloudpipe_server.transfers.credentials import parse_credentials
from cloudpipe_server.transfers.guard import pool_manager
from cloudpipe_server.transfers.upload import upload_outputs
from tests.transfers.seaweed import S3Server

FILES = {f"out/{n}.txt": f"file {n}\n".encode() for n in range(3)}


def _archive(path: str) -> tuple[IO[bytes], bool]:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, body in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    data.seek(0)
    return data, True


def _upload(s3: S3Server, bucket: str, config: TransferConfig, cancelled: Callable[[], bool]) -> int:
    spec = JobSpec(cmd="true", outputs={"/out/": f"s3://{bucket}/run/"}, storage_secret="S3")
    job = Job(id=1, account="me", spec=spec, status=JobStatus.PROCESSING, created_at=datetime.now(UTC))
    credentials = parse_credentials(s3.credentials(), "S3")
    http = pool_manager(TransferConfig(allow_private_addresses=True))
    return upload_outputs(job, _archive, http, config, lambda: credentials, cancelled)


def _keys(s3: S3Server, bucket: str) -> list[str]:
    return sorted(str(o.object_name) for o in s3.client().list_objects(bucket, recursive=True))


def test_all_files_are_uploaded_within_the_bounds(s3_server: S3Server, bucket: str) -> None:
    assert _upload(s3_server, bucket, TransferConfig(max_output_files=3), lambda: False) == 3
    assert _keys(s3_server, bucket) == ["run/0.txt", "run/1.txt", "run/2.txt"]


def test_a_kill_stops_the_upload(s3_server: S3Server, bucket: str) -> None:
    checks = iter([False] * 4)  # the output, the first file, its one read, the second file: then killed
    with pytest.raises(TransferFailed, match="killed while its outputs were uploaded"):
        _upload(s3_server, bucket, TransferConfig(), lambda: next(checks, True))
    assert _keys(s3_server, bucket) == ["run/0.txt"]


def test_an_upload_past_its_deadline_stops(s3_server: S3Server, bucket: str) -> None:
    with pytest.raises(TransferFailed, match=r"outputs took over 1e-09 s together \(CLOUDPIPE_TRANSFER_DEADLINE\)"):
        _upload(s3_server, bucket, TransferConfig(deadline=1e-9), lambda: False)
    assert _keys(s3_server, bucket) == []


def test_outputs_over_the_file_cap_stop(s3_server: S3Server, bucket: str) -> None:
    with pytest.raises(TransferFailed, match=r"over 2 files together \(CLOUDPIPE_TRANSFER_MAX_OUTPUT_FILES\)"):
        _upload(s3_server, bucket, TransferConfig(max_output_files=2), lambda: False)
    assert _keys(s3_server, bucket) == ["run/0.txt", "run/1.txt"]
