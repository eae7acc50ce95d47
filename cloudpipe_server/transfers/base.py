"""What transfers are configured with, and how they fail."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TransferConfig:
    """Bounds of one job's transfers (the server's `CLOUDPIPE_TRANSFER_*` settings)."""

    input_max_bytes: int = 1 << 30  # all of a job's inputs together
    output_max_bytes: int = 1 << 30  # all of a job's outputs together
    # Fetch from and upload to loopback, private, link-local and metadata addresses too
    # (off: a URL or endpoint resolving to one is refused; tests on loopback turn it on).
    allow_private_addresses: bool = False
    timeout: float = 30.0  # seconds to connect, and between two reads of one response
    # seconds all of a job's inputs may take to fetch, and all of its outputs to upload
    # (a source trickling a byte at a time never hits `timeout`)
    deadline: float = 900.0
    max_output_files: int = 10_000  # files all of a job's outputs hold together
    temp_dir: str | None = None  # where files go through; None: the system's


class TransferFailed(Exception):
    """An input could not be fetched or an output uploaded; the message is the job's
    reason, naming the path and the URL ("input /in/a.csv: s3://b/a.csv: NoSuchKey")."""


class Progress:
    """The bounds of one job's fetch, or its upload, checked at every read and between
    files: `check()` raises TransferFailed once `cancelled()` (the job was killed) or
    once `deadline` seconds have passed since it was made."""

    def __init__(self, deadline: float, cancelled: Callable[[], bool], what: str, done: str) -> None:
        self._ends = time.monotonic() + deadline
        self._deadline = deadline
        self._cancelled = cancelled
        self._what = what
        self._done = done

    def check(self) -> None:
        if self._cancelled():
            raise TransferFailed(f"killed while its {self._what} were {self._done}")
        if time.monotonic() > self._ends:
            raise TransferFailed(
                f"the job's {self._what} took over {self._deadline:g} s together (CLOUDPIPE_TRANSFER_DEADLINE)"
            )


def describe(exc: BaseException) -> str:
    """A short, true reason for a failed request (the S3 error code, the HTTP status,
    why a connection failed), for a job's reason."""
    # imported here: the config above is read by the server's settings, which need not
    # load the S3 client
    from minio.error import InvalidResponseError, S3Error, ServerError
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ResponseError

    if isinstance(exc, S3Error):
        return f"{exc.code} ({exc.message})" if exc.message else str(exc.code)
    if isinstance(exc, ServerError):
        return f"the store answered HTTP {exc.status_code}"
    if isinstance(exc, InvalidResponseError):
        return f"the store's answer is not S3's: {str(exc)[:200]}"
    if isinstance(exc, MaxRetryError):
        where = f"{exc.pool.host}:{exc.pool.port}" if exc.pool is not None else "the host"
        reason = exc.reason
        if isinstance(reason, NewConnectionError):
            text = str(reason)
            return f"cannot connect to {where}: {text[text.find('Failed') :] if 'Failed' in text else text}"
        if isinstance(reason, ResponseError):
            return f"{where} kept failing: {reason}"
        return f"no answer from {where}: {reason}"
    return str(exc)[:300] or type(exc).__name__
