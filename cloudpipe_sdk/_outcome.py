"""What a finished job amounts to: its value, or the exception to raise. Shared by
`Job` and `AsyncJob`."""

from __future__ import annotations

import re
from typing import Any

from cloudpipe_sdk._errors import JobFailed, JobKilled, JobStalled, MissingModule, RemoteTraceback
from cloudpipe_sdk._serialize import load_envelope
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._types import JobSnapshot

TAIL_LINES = 20
# How runners older than the `missing_module` envelope key report a missing module.
_NO_MODULE_NAMED = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")
# What `python3 -m cloudpipe_runner` prints in an image without the runner.
RUNNER_MODULE = "cloudpipe_runner"
_NO_RUNNER = re.compile(rb"^\S*python[\d.]*: No module named " + RUNNER_MODULE.encode() + rb"\s*$", re.MULTILINE)


def outcome(snapshot: JobSnapshot) -> Any:
    """The result of a finished job, or raise what `Job.result()` documents."""
    value, error = settle(snapshot)
    if error is not None:
        raise error
    return value


def job_exception(snapshot: JobSnapshot) -> BaseException | None:
    """The job's own failure (JobFailed, or the function's exception), returned, not
    raised; None when the job has a result."""
    return settle(snapshot)[1]


def settle(snapshot: JobSnapshot) -> tuple[Any, BaseException | None]:
    """(value, None) for a job with a result, (None, its failure) otherwise."""
    status = snapshot.status
    if snapshot.spec.result_type == "pickle" and snapshot.result:
        envelope = load_envelope(snapshot.result, snapshot.id, snapshot.spec.serializer)
        if envelope["ok"] and status is JobStatus.DONE:
            return envelope["value"], None
        if not envelope["ok"]:
            return None, remote_exception(snapshot, envelope)
    if status is JobStatus.DONE:
        return snapshot.result, None
    if snapshot.spec.result_type == "pickle" and _NO_RUNNER.search(snapshot.stderr):
        return None, missing_error(snapshot, RUNNER_MODULE, "")
    return None, failure(snapshot)


def remote_exception(snapshot: JobSnapshot, envelope: dict[str, Any]) -> BaseException:
    """The function's own exception with the remote traceback as its cause; MissingModule
    when a module was missing in the image; JobFailed when the exception did not survive
    the trip."""
    traceback_text = str(envelope.get("traceback", ""))
    exc = envelope.get("exc")
    module = missing_module(envelope)
    if module:
        return missing_error(snapshot, module, traceback_text)
    if not isinstance(exc, BaseException):
        reason = f"{envelope.get('exc_type', 'exception')}: {envelope.get('exc_repr', '')}"
        return failure(snapshot, remote_traceback=traceback_text, reason=reason)
    exc.__cause__ = RemoteTraceback(traceback_text)
    return exc


def missing_error(snapshot: JobSnapshot, module: str, traceback_text: str) -> MissingModule:
    missing = MissingModule(
        snapshot.id,
        snapshot.status.value,
        module,
        snapshot.image or snapshot.spec.image,
        snapshot.return_code,
        tail(snapshot.stderr),
        traceback_text,
        stdout_tail=tail(snapshot.stdout),
    )
    if traceback_text:
        missing.__cause__ = RemoteTraceback(traceback_text)
    return missing


def missing_module(envelope: dict[str, Any]) -> str:
    """The module a failed function job found missing in its image, or ""."""
    named = envelope.get("missing_module")
    if isinstance(named, str) and named:
        return named
    exc = envelope.get("exc")
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return exc.name
    if envelope.get("exc_type") == "builtins.RuntimeError":  # an older runner's load failure
        found = _NO_MODULE_NAMED.search(str(envelope.get("exc_repr", "")))
        if found and "cannot unpickle the job payload" in str(envelope.get("exc_repr", "")):
            return found.group(1)
    return ""


def failure(snapshot: JobSnapshot, remote_traceback: str = "", reason: str | None = None) -> JobFailed:
    status = snapshot.status
    cls = {JobStatus.KILLED: JobKilled, JobStatus.STALLED: JobStalled}.get(status, JobFailed)
    return cls(
        snapshot.id,
        status.value,
        reason or snapshot.reason,
        snapshot.return_code,
        tail(snapshot.stderr),
        remote_traceback,
        stdout_tail=tail(snapshot.stdout),
    )


def tail(data: bytes, lines: int = TAIL_LINES) -> str:
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
