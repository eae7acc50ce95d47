"""A job's inputs fetched into one tar archive (a temporary file) that the executor
puts into the job's created container: each file streamed through a temporary file,
counted against the job's input budget as it comes, written owned by the job's user,
mode 0644. A missing parent directory is made by the engine (root's, 0755)."""

from __future__ import annotations

import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, Any

import urllib3
from minio.error import MinioException
from urllib3.exceptions import HTTPError

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import Job
from cloudpipe_server.transfers.base import Progress, TransferConfig, TransferFailed, describe
from cloudpipe_server.transfers.credentials import StorageCredentials
from cloudpipe_server.transfers.guard import AddressRefused
from cloudpipe_server.transfers.urls import INPUT_SCHEMES, parse_url

CHUNK = 64 << 10  # read1: what has arrived, up to this, so bounds are checked at every read
# what a request, the client (ValueError: a name or setting it refuses) or a URL stored
# before a submit rule was added (InvalidArgument) fails with
_FAILURES = (MinioException, HTTPError, OSError, ValueError, InvalidArgument)


@contextmanager
def staged_inputs(
    job: Job,
    owner: tuple[int, int],
    http: urllib3.PoolManager,
    config: TransferConfig,
    credentials: Callable[[], StorageCredentials],
    cancelled: Callable[[], bool],
) -> Iterator[IO[bytes]]:
    """The job's inputs as a tar to extract at "/", open for reading from its start, and
    removed on exit. Raises TransferFailed naming the input that could not be fetched
    (or that would take the job over `config.input_max_bytes`)."""
    budget = _Budget(config.input_max_bytes)
    progress = Progress(config.deadline, cancelled, "inputs", "fetched")
    with ExitStack() as stack:
        archive = stack.enter_context(tempfile.TemporaryFile(dir=config.temp_dir))
        with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(job.spec.inputs):
                url = job.spec.inputs[path]
                progress.check()
                with tempfile.TemporaryFile(dir=config.temp_dir) as body:
                    try:
                        _fetch(url, body, budget, http, credentials, progress)
                    except (TransferFailed, AddressRefused) as exc:
                        raise TransferFailed(f"input {path}: {url}: {exc}") from None
                    except _FAILURES as exc:
                        raise TransferFailed(f"input {path}: {url}: {describe(exc)}") from None
                    info = tarfile.TarInfo(path.lstrip("/"))
                    info.size, info.mode, info.mtime = body.tell(), 0o644, int(time.time())
                    info.uid, info.gid = owner
                    body.seek(0)
                    tar.addfile(info, body)
        archive.seek(0)
        yield archive


class _Budget:
    """Bytes a job's transfers may still take."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise TransferFailed(
                f"the job's inputs are over {self.limit} bytes together (CLOUDPIPE_TRANSFER_INPUT_MAX_BYTES)"
            )


def _fetch(
    url: str,
    into: IO[bytes],
    budget: _Budget,
    http: urllib3.PoolManager,
    credentials: Callable[[], StorageCredentials],
    progress: Progress,
) -> None:
    location = parse_url(url, INPUT_SCHEMES, "input")
    response: Any
    if location.is_s3:
        response = credentials().client(http).get_object(location.bucket, location.key)
    else:
        response = http.request("GET", url, preload_content=False, redirect=True)
        if response.status != 200:
            status = response.status
            response.release_conn()
            raise TransferFailed(f"HTTP {status} {response.reason or ''}".rstrip())
    try:
        announced = response.headers.get("Content-Length")
        if announced and announced.isdigit():
            budget.take(int(announced))  # refused before a byte is read
            budget.used -= int(announced)
        while piece := response.read1(CHUNK):
            budget.take(len(piece))
            into.write(piece)
            progress.check()
    finally:
        response.close()
        response.release_conn()
