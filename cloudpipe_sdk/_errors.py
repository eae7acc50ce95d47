"""Errors raised by the SDK.

CloudpipeError
 ├── AuthError          credentials missing or wrong (UNAUTHENTICATED / PERMISSION_DENIED)
 ├── NotFound           no such job (saved job, schedule, image, volume, file, secret) in
 │                      your account; also a job naming a volume or secret you do not have
 ├── AlreadyExists      a saved job, schedule or volume of that name exists already
 ├── InvalidRequest     the server refused the request; the message names the field (and,
 │                      for a function its runner cannot load, the mismatch and the fix);
 │                      also FAILED_PRECONDITION (`code`), e.g. deleting a volume in use
 ├── ResourceExhausted  a quota or limit of your account (or a message size) was reached
 ├── Unavailable        the server cannot be reached (after retries), or dropped the call
 ├── ServerError        the server failed on its side (INTERNAL, UNKNOWN, DATA_LOSS)
 ├── ProtocolError      the server sent what this SDK does not understand, or lacks an RPC
 │                      (SDK and server versions differ)
 ├── Timeout            a deadline passed before the job finished
 ├── ImageBuildFailed   an Image did not build; names the failing step, with the log's tail
 └── JobFailed          the job ended without a result; carries reason, return code,
      │                 stdout/stderr tails and the remote traceback
      ├── JobKilled     the job was killed
      ├── JobStalled    the server lost the job's runner
      └── MissingModule the job needs a module its image lacks (also a ModuleNotFoundError)
"""

from __future__ import annotations

import grpc


class CloudpipeError(Exception):
    """Root of every error the SDK raises. Errors from the server carry the gRPC status
    name in `code` ("NOT_FOUND", ...); errors raised here have an empty one."""

    code: str = ""


class AuthError(CloudpipeError):
    """The server did not accept the credentials."""


class NotFound(CloudpipeError):
    """The job (saved job, schedule, image, volume, file in a volume, secret) does not
    exist in your account; another account's looks the same. A submit naming a volume
    or secret your account lacks raises it too, and makes no job."""


class AlreadyExists(CloudpipeError):
    """A saved job or schedule of that name exists already in your account."""


class InvalidRequest(CloudpipeError):
    """The server rejected the request as invalid."""


class ResourceExhausted(CloudpipeError):
    """A quota or limit of your account was reached (jobs, rate, message size); the
    message says which. Waiting for jobs to finish, or asking for less, helps."""


class Unavailable(CloudpipeError):
    """The server could not be reached or is overloaded; retrying later may help."""


class ServerError(CloudpipeError):
    """The server failed on its side; its log has the details."""


class ProtocolError(CloudpipeError):
    """The server and this SDK do not understand each other: an answer this SDK cannot
    read (a status, event or result it does not know) or an RPC the server lacks.
    Upgrading whichever is older fixes it."""


class Timeout(CloudpipeError, TimeoutError):
    """The job did not finish within the given time."""


class ImageBuildFailed(CloudpipeError):
    """An `Image` did not build. `step` is the failing step (1-based, in the order the
    Image's methods were called; 0: the server's own setup, such as the base image),
    `step_description` what it was ("pip_install nosuchpkg"), `log_tail` the last lines
    of the build log.

    Example::

        try:
            client.images.build(Image.runner().run_commands("exit 3"))
        except ImageBuildFailed as failure:
            failure.step             # 1
            print(failure.log_tail)
    """

    def __init__(self, step: int, step_description: str, message: str, log_tail: str) -> None:
        self.step = step
        self.step_description = step_description
        self.log_tail = log_tail
        where = f"step {step} ({step_description})" if step else step_description or "the build"
        text = f"image build failed at {where}: {message}"
        if log_tail:
            text += f"\n--- build log (tail) ---\n{log_tail}"
        super().__init__(text)


class JobFailed(CloudpipeError):
    """A job ended without a result.

    Attributes: `job_id`, `status`, `reason`, `return_code` (None if it never exited),
    `stdout_tail` and `stderr_tail` (the last lines of its output) and `remote_traceback`
    (for function jobs: the traceback as the runner printed it).

    Example::

        try:
            client.shell("exit 3").result()
        except JobFailed as failure:
            failure.return_code      # 3
    """

    def __init__(
        self,
        job_id: int,
        status: str,
        reason: str,
        return_code: int | None,
        stderr_tail: str,
        remote_traceback: str = "",
        stdout_tail: str = "",
    ) -> None:
        self.job_id = job_id
        self.stdout_tail = stdout_tail
        self.status = status
        self.reason = reason
        self.return_code = return_code
        self.stderr_tail = stderr_tail
        self.remote_traceback = remote_traceback
        message = f"job {job_id} ended {status}"
        if reason:
            message += f": {reason}"
        if stderr_tail:
            message += f"\n--- stderr (tail) ---\n{stderr_tail}"
        super().__init__(message)


class JobKilled(JobFailed):
    """The job was killed (on request, or by a limit)."""


class JobStalled(JobFailed):
    """The server lost the job's runner and the job was not restartable."""


class MissingModule(JobFailed, ModuleNotFoundError):
    """A function job failed because a module it needs is not installed in its image:
    the payload referred to it (an installed package of yours is pickled by reference),
    or the function imported it.

    Attributes (besides JobFailed's): `module` (also `name`, as for ModuleNotFoundError)
    and `image` (the image the job ran in). Your own modules travel by value when they
    are importable where you submit from; installed packages must be in the image: use
    an image built `FROM cloudpipe/runner-python3` that installs them, with `image=`
    (docs/sdk.md, "Your own code and packages").

    Example::

        try:
            client.submit(numpy.zeros, 3).result()
        except MissingModule as missing:
            missing.module           # "numpy"
    """

    def __init__(
        self,
        job_id: int,
        status: str,
        module: str,
        image: str,
        return_code: int | None,
        stderr_tail: str,
        remote_traceback: str = "",
        stdout_tail: str = "",
    ) -> None:
        self.module = module
        self.image = image
        top = module.partition(".")[0]
        if top == "cloudpipe_runner":
            reason = (
                f"the image {image or '(the server default)'} has no Cloudpipe Python runner, so it cannot "
                f"run function jobs; use Image.from_image({image!r}) (the runner is added), an image built "
                f"`FROM cloudpipe/runner-python3`, or add the runner "
                f"to yours with `python runner_images/build.py --only python3 --base-python3 IMAGE` and tag the result "
                f'(docs/sdk.md, "Python versions")'
            )
        else:
            reason = (
                f"module {module!r} is not installed in the image {image or '(the server default)'}; "
                f"if it is an installed package, run the job in an image that has it "
                f"(image=Image.runner().pip_install({top!r}), or a Dockerfile "
                f"`FROM cloudpipe/runner-python3` that installs it, then image=...; see docs/sdk.md, "
                f'"Images"); if it is your own code, make it importable where you submit from, so that it '
                f"travels by value, or add it with Image.add_local_python_source({top!r})"
            )
        super().__init__(job_id, status, reason, return_code, stderr_tail, remote_traceback, stdout_tail)
        self.name = module  # ModuleNotFoundError's attribute

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (
                self.job_id,
                self.status,
                self.module,
                self.image,
                self.return_code,
                self.stderr_tail,
                self.remote_traceback,
                self.stdout_tail,
            ),
        )


class RemoteTraceback(Exception):
    """Attached as `__cause__` of an exception re-raised from a function job: its
    message is the traceback as the runner printed it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


# Every status code a call can end with (OK aside); tests/unit/test_client_rpc.py checks
# that none is left out.
_CODES: dict[grpc.StatusCode, type[CloudpipeError]] = {
    grpc.StatusCode.UNAUTHENTICATED: AuthError,
    grpc.StatusCode.PERMISSION_DENIED: AuthError,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidRequest,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequest,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.ABORTED: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.INTERNAL: ServerError,
    grpc.StatusCode.UNKNOWN: ServerError,
    grpc.StatusCode.DATA_LOSS: ServerError,
    grpc.StatusCode.UNIMPLEMENTED: ProtocolError,
}


def from_rpc_error(error: grpc.RpcError) -> CloudpipeError:
    """The SDK error for a failed RPC."""
    # grpc.Call for the sync API; grpc.aio.AioRpcError has the same two methods
    has_status = callable(getattr(error, "code", None)) and callable(getattr(error, "details", None))
    code = error.code() if has_status else grpc.StatusCode.UNKNOWN
    details = error.details() if has_status else str(error)
    cls = _CODES.get(code, ServerError)
    mapped = cls(f"{details} ({code.name})")
    mapped.code = str(code.name)
    return mapped
