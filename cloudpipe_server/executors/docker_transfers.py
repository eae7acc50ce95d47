"""A fresh job container's side of inputs and outputs (cloudpipe_server/transfers): the
fetched inputs and the output directories the image lacks put into the created
container, and the output paths read out of the exited one for upload. Each function
raises TransferFailed with the job's reason."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import docker.errors
import requests

from cloudpipe_common.logs import job_fields
from cloudpipe_server.executors.container_config import directories_archive, output_directories, user_ids
from cloudpipe_server.executors.docker_io import ChunkReader
from cloudpipe_server.models import Job
from cloudpipe_server.transfers.base import TransferFailed
from cloudpipe_server.transfers.service import Transfers

log = logging.getLogger(__name__)

_GO_MODE_DIR = 1 << 31  # os.ModeDir in the engine's path stat
# the engine stopped answering (as docker.py's _CUT): not the upload's failure, the engine's
_ENGINE_CUT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class _EngineCut(Exception):
    """The engine was lost while an output's archive was read; not an OSError, so the
    upload does not take it for its own failure. `upload_outputs` raises the original."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except _ENGINE_CUT as exc:
        raise _EngineCut(exc) from exc


def put_transfers(api: Any, container_id: str, job: Job, user: str, staged: IO[bytes] | None) -> None:
    """Into the created container: the directories its outputs are written in that the
    image lacks (the job's user's, 0755, so it can write there), then its fetched inputs
    (each the job's user's, 0644)."""
    uid, gid = user_ids(user)
    try:
        missing = [path for path in output_directories(job.spec.outputs) if not _exists(api, container_id, path)]
    except docker.errors.APIError as exc:
        raise TransferFailed(f"could not look into the job's container: {exc.explanation or exc}") from None
    archives: list[tuple[str, bytes | IO[bytes]]] = []
    if missing:
        archives.append(("output directories", directories_archive(missing, uid, gid)))
    if staged is not None:
        archives.append(("inputs", staged))
    for what, archive in archives:
        try:
            written = bool(api.put_archive(container_id, "/", archive))
            problem = "" if written else "the engine refused the archive"
        except docker.errors.APIError as exc:
            problem = str(exc.explanation or exc)
        if problem:
            raise TransferFailed(f"could not write the job's {what} into its container: {problem}")


def _exists(api: Any, container_id: str, path: str) -> bool:
    """Whether `path` is in the container (the archive endpoint's HEAD: a stat)."""
    response = api.head(api._url("/containers/{0}/archive", container_id), params={"path": path}, timeout=30)
    if response.status_code == 404:
        return False
    api._raise_for_status(response)
    return True


def upload_outputs(api: Any, transfers: Transfers, job: Job, container_id: str, cancelled: Callable[[], bool]) -> str:
    """Upload the exited job's outputs from its container; "" or why they could not all be.
    When the engine stops answering meanwhile, its requests error is raised (the
    executor then leaves the container to be re-adopted, and the upload done again)."""

    def open_archive(path: str) -> tuple[IO[bytes], bool]:
        try:
            stream, stat = api.get_archive(container_id, path)
        except docker.errors.NotFound:
            raise TransferFailed("not found in the container") from None
        except _ENGINE_CUT as exc:
            raise _EngineCut(exc) from exc
        except docker.errors.APIError as exc:
            raise TransferFailed(f"could not be read from the container: {exc.explanation or exc}") from None
        directory = bool(int((stat or {}).get("mode") or 0) & _GO_MODE_DIR)
        return io.BufferedReader(ChunkReader(_guarded(stream)), 1 << 20), directory

    try:
        count = transfers.upload_outputs(job, open_archive, cancelled)
    except TransferFailed as exc:
        log.info("job %d: outputs not uploaded: %s", job.id, exc, extra=job_fields(job.id))
        return str(exc)
    except _EngineCut as exc:
        raise exc.original from None
    log.info("job %d: %d output files uploaded", job.id, count, extra=job_fields(job.id))
    return ""
