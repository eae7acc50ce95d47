"""The one error tree of Cloudpipe's programs (the control plane and the auth service).

    CloudpipeError
     ├── InvalidArgument      bad input; the message names the field
     ├── NotFound             no such object (or not the caller's)
     ├── AlreadyExists
     ├── FailedPrecondition   valid request, wrong state or version
     ├── Unauthenticated      missing or wrong credentials
     ├── PermissionDenied
     ├── ResourceExhausted    quota or size limit
     │    └── TooManyAttempts  too many failed authentications; retry after a while
     └── Unavailable          a dependency is down; retrying may help
          └── StoreUnavailable

Each maps to one HTTP status in `HTTP_STATUS`, and, on the server, to one gRPC status
code in `cloudpipe_server.errors.GRPC_CODES` (this package imports nothing of gRPC).
Anything else that escapes a handler is a bug and becomes INTERNAL, logged server-side only.
"""

from __future__ import annotations


class CloudpipeError(Exception):
    """Root of every error Cloudpipe raises on purpose."""


class InvalidArgument(CloudpipeError):
    """The request is malformed; the message names the offending field."""


class NotFound(CloudpipeError):
    """The object does not exist, or belongs to another account."""


class AlreadyExists(CloudpipeError):
    """An object with that identity exists already."""


class FailedPrecondition(CloudpipeError):
    """The request is valid but cannot be done in the current state."""


class Unauthenticated(CloudpipeError):
    """Credentials are missing or wrong."""


class PermissionDenied(CloudpipeError):
    """The caller is known but may not do this."""


class ResourceExhausted(CloudpipeError):
    """A quota or a size limit was hit."""


class TooManyAttempts(ResourceExhausted):
    """Too many failed authentication attempts from this source or for this account;
    `retry_after` says in how many seconds the next attempt is allowed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(CloudpipeError):
    """A dependency (store, Docker, auth service) cannot be reached; retry later."""


class StoreUnavailable(Unavailable):
    """The job store failed; the change may or may not have been made (a commit whose answer was lost)."""


HTTP_STATUS: dict[type[CloudpipeError], int] = {
    InvalidArgument: 400,
    NotFound: 404,
    AlreadyExists: 409,
    FailedPrecondition: 412,
    Unauthenticated: 401,
    PermissionDenied: 403,
    ResourceExhausted: 429,
    Unavailable: 503,
}


def http_status(error: CloudpipeError) -> int:
    """The HTTP status for an error, walking up its class tree."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
