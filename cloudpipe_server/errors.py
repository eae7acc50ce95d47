"""The server's side of the one error tree.

The tree itself (`CloudpipeError` and its subclasses, drawn in `cloudpipe_common.errors`)
is shared with the auth service and re-exported here, so server code keeps importing
from `cloudpipe_server.errors`. This module adds the table mapping each class to one
gRPC status code; the HTTP table is `HTTP_STATUS`. Anything else that escapes a handler
is a bug and becomes INTERNAL, logged server-side only.
"""

from __future__ import annotations

import grpc

from cloudpipe_common.errors import (
    HTTP_STATUS,
    AlreadyExists,
    CloudpipeError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StoreUnavailable,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
    http_status,
)

__all__ = [
    "GRPC_CODES",
    "HTTP_STATUS",
    "AlreadyExists",
    "CloudpipeError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "StoreUnavailable",
    "TooManyAttempts",
    "Unauthenticated",
    "Unavailable",
    "grpc_code",
    "http_status",
]


GRPC_CODES: dict[type[CloudpipeError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def grpc_code(error: CloudpipeError) -> grpc.StatusCode:
    """The gRPC status for an error, walking up its class tree."""
    for cls in type(error).__mro__:
        if cls in GRPC_CODES:
            return GRPC_CODES[cls]
    return grpc.StatusCode.INTERNAL
