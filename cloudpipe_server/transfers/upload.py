"""A job's outputs uploaded from its exited container: each output path's archive as
the engine streams it, every regular file in it (symbolic links, devices and the like
are skipped) through a temporary file to its object, counted against the job's output
budget from the archive's headers before it is read."""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable
from typing import IO

import urllib3
from minio.error import MinioException
from urllib3.exceptions import HTTPError

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import Job
from cloudpipe_server.transfers.base import Progress, TransferConfig, TransferFailed, describe
from cloudpipe_server.transfers.credentials import StorageCredentials
from cloudpipe_server.transfers.guard import AddressRefused
from cloudpipe_server.transfers.urls import OUTPUT_SCHEMES, Location, parse_url

CHUNK = 64 << 10
# what a request, the client (ValueError: a name or setting it refuses) or a URL stored
# before a submit rule was added (InvalidArgument) fails with
_FAILURES = (MinioException, HTTPError, OSError, tarfile.TarError, ValueError, InvalidArgument)
# (container path) -> (its tar archive as a stream, whether the path is a directory);
# raises TransferFailed when the path is not in the container
OpenArchive = Callable[[str], tuple[IO[bytes], bool]]


def upload_outputs(
    job: Job,
    open_archive: OpenArchive,
    http: urllib3.PoolManager,
    config: TransferConfig,
    credentials: Callable[[], StorageCredentials],
    cancelled: Callable[[], bool],
) -> int:
    """Upload every output of `job`; returns how many files were uploaded. Raises
    TransferFailed naming the first output that could not be uploaded (what was
    uploaded before it stays in the bucket), also once `cancelled()` (checked before
    each file and at each read), after `config.deadline` seconds, or past
    `config.max_output_files` files."""
    used = 0
    uploaded = 0
    progress = Progress(config.deadline, cancelled, "outputs", "uploaded")
    for path in sorted(job.spec.outputs):
        url = job.spec.outputs[path]
        try:
            progress.check()
            client = credentials().client(http)
            location = parse_url(url, OUTPUT_SCHEMES, "output")
            archive, is_dir = open_archive(path.rstrip("/") if path.endswith("/") else path)
            if path.endswith("/") != is_dir:
                raise TransferFailed(
                    "is a directory in the container; end the path with '/' to upload a directory"
                    if is_dir
                    else "is a file in the container, not a directory"
                )
            with tarfile.open(fileobj=archive, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key = _key(location, member.name, path.endswith("/"))
                    if key is None:
                        continue
                    progress.check()
                    if uploaded >= config.max_output_files:
                        raise TransferFailed(
                            f"the job's outputs hold over {config.max_output_files} files together"
                            " (CLOUDPIPE_TRANSFER_MAX_OUTPUT_FILES)"
                        )
                    used += member.size
                    if used > config.output_max_bytes:
                        raise TransferFailed(
                            f"the job's outputs are over {config.output_max_bytes} bytes together"
                            " (CLOUDPIPE_TRANSFER_OUTPUT_MAX_BYTES)"
                        )
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    with tempfile.TemporaryFile(dir=config.temp_dir) as body:
                        while piece := source.read(CHUNK):
                            body.write(piece)
                            progress.check()
                        size = body.tell()
                        body.seek(0)
                        client.put_object(location.bucket, key, body, size)
                    uploaded += 1
        except (TransferFailed, AddressRefused) as exc:
            raise TransferFailed(f"output {path}: {url}: {exc}") from None
        except _FAILURES as exc:
            raise TransferFailed(f"output {path}: {url}: {describe(exc)}") from None
    return uploaded


def _key(location: Location, member: str, directory: bool) -> str | None:
    """The object key of archive member `member`: the URL's own for a file output;
    under a directory output, the URL's prefix + the path below the directory."""
    if not directory:
        return location.key
    _, slash, below = member.partition("/")
    return location.key + below if slash and below else None
