"""The UI routes' answer for a failed gRPC call of a service other than the multyvac
job routes (schedules, saved jobs, admin): credentials as on `/v1/`, the rest by the
meaning of the status code, in the Go envelope."""

from __future__ import annotations

import grpc

from http_gateway import multyvac
from http_gateway.multyvac import ApiError

_BY_CODE: dict[grpc.StatusCode, tuple[int, str, str, bool]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "QINVAL", "", False),
    grpc.StatusCode.OUT_OF_RANGE: (400, "QINVAL", "", False),
    grpc.StatusCode.NOT_FOUND: (404, "NOTFOUND", "", False),
    grpc.StatusCode.ALREADY_EXISTS: (409, "CONFLICT", "", False),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "CONFLICT", "", False),
    grpc.StatusCode.ABORTED: (409, "CONFLICT", "Try again.", True),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "LIMIT", "A limit of your account was reached.", False),
    grpc.StatusCode.UNAVAILABLE: (503, "UNAVAIL", "The Cloudpipe server is unreachable; try again shortly.", True),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "UNAVAIL", "The Cloudpipe server did not answer in time.", True),
    grpc.StatusCode.UNIMPLEMENTED: (501, "UNIMPL", "This server does not offer this yet.", False),
}


def service_failure(error: grpc.aio.AioRpcError, account: str) -> ApiError:
    code = error.code()
    detail = error.details() or code.name
    auth = dict(error.trailing_metadata() or ()).get("x-cloudpipe-auth")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) or auth:
        return multyvac.rpc_failure("probe", error, account)
    status, short, hint, retry = _BY_CODE.get(
        code, (502, "SERVER", "The Cloudpipe server failed; its log has the details.", True)
    )
    return ApiError(status, short, detail, hint, retry)
