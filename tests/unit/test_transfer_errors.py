"""What the object store's client refuses with ValueError becomes a clear reason: a
bucket name it does not take is refused at submit, a bad region or port in the storage
secret when the secret is read, and a ValueError while a transfer runs ends the job's
fetch with TransferFailed; a failed fetch never leaves the run behind in the executor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.executors.base import Limits
from cloudpipe_server.executors.docker import DockerConfig, DockerExecutor
from cloudpipe_server.models import Job, JobSpec, JobStatus
from cloudpipe_server.transfers.base import TransferConfig, TransferFailed
from cloudpipe_server.transfers.credentials import parse_credentials
from cloudpipe_server.transfers.fetch import staged_inputs
from cloudpipe_server.transfers.guard import pool_manager
from cloudpipe_server.transfers.urls import INPUT_SCHEMES, parse_url

LIMITS = Limits(cpus=1, memory_bytes=1 << 30, pids=100, max_runtime=None, network=False)
KEYS = {"access_key_id": "a", "secret_access_key": "b"}


def test_a_bucket_named_like_an_ip_address_is_refused_at_submit() -> None:
    with pytest.raises(InvalidArgument, match="must not be formatted as an IP address"):
        parse_url("s3://192.168.1.1/k", INPUT_SCHEMES, "jobs[0].inputs['/in/a']")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({**KEYS, "region": "us east 1"}, "invalid region"),
        ({**KEYS, "endpoint_url": "http://store:99999"}, "out of range"),
        ({**KEYS, "endpoint_url": "http://store:port"}, "port"),
    ],
)
def test_a_bad_region_or_port_in_the_storage_secret_is_told(value: dict[str, str], message: str) -> None:
    with pytest.raises(TransferFailed, match=message) as raised:
        parse_credentials(json.dumps(value).encode(), "S3")
    assert "storage secret 'S3'" in str(raised.value) and '"b"' not in str(raised.value)


def _job(inputs: dict[str, str]) -> Job:
    spec = JobSpec(cmd="true", inputs=inputs, storage_secret="S3")
    return Job(id=7, account="me", spec=spec, status=JobStatus.PROCESSING, created_at=datetime.now(UTC))


def test_a_value_error_of_the_client_while_fetching_fails_the_transfer() -> None:
    job = _job({"/in/a": "s3://192.168.1.1/k"})  # stored before submit checked bucket names
    credentials = parse_credentials(json.dumps(KEYS).encode(), "S3")
    config = TransferConfig()
    with (
        pytest.raises(TransferFailed, match=r"input /in/a: s3://192\.168\.1\.1/k: .*IP address"),
        staged_inputs(job, (1000, 1000), pool_manager(config), config, lambda: credentials, lambda: False),
    ):
        pass


def test_an_unexpected_error_while_fetching_inputs_forgets_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    executor = DockerExecutor(DockerConfig(owner="unit", cluster="unit"), lambda: datetime.now(UTC))

    @contextmanager
    def broken(job: Job, user: str, run: Any) -> Iterator[None]:
        raise RuntimeError("a bug")
        yield

    monkeypatch.setattr(executor, "_engine", lambda: None)
    monkeypatch.setattr(executor, "_user_for", lambda image: "1000:1000")
    monkeypatch.setattr(executor, "_staged_inputs", broken)
    job = _job({"/in/a": "https://example.org/a"})
    with pytest.raises(RuntimeError, match="a bug"):
        executor._run(job, "img", LIMITS, observer=None)  # type: ignore[arg-type]
    assert job.id not in executor._runs
