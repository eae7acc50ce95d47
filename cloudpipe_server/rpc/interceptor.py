"""One server interceptor for authentication and error mapping.

It authenticates every call except health and reflection, hands the Principal to the
servicer through a context variable, and turns CloudpipeError into the matching gRPC
status. Any other exception is a bug: INTERNAL for the caller, the traceback in the
server log only.

Credentials travel as metadata: `authorization: Bearer <api key>` and, optionally,
`x-cloudpipe-account: <account name>`.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from cloudpipe_server.auth.base import Authenticator, Principal
from cloudpipe_server.errors import CloudpipeError, grpc_code

log = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ACCOUNT_HEADER = "x-cloudpipe-account"

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("cloudpipe_principal")


def current_principal() -> Principal:
    """The caller of the RPC being served (set by `AuthInterceptor`)."""
    return _principal.get()


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(EXEMPT_PREFIXES):
            return handler
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ())}
        authorization = str(metadata.get("authorization", ""))
        key = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
        account = metadata.get(ACCOUNT_HEADER)
        try:
            principal = await self._authenticator.authenticate(str(account) if account else None, key)
        except CloudpipeError as exc:
            log.info("rejected %s: %s", method, exc)
            return _wrap(handler, None, exc)
        return _wrap(handler, principal, None)


def _wrap(handler: grpc.RpcMethodHandler, principal: Principal | None, error: CloudpipeError | None) -> Any:
    """The same handler, run with the principal set and errors mapped to statuses."""

    async def fail(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        if isinstance(exc, CloudpipeError):
            await context.abort(grpc_code(exc), str(exc))
        log.error("internal error in %s", handler, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal server error")

    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if error is not None:
                await fail(context, error)
            assert principal is not None
            token = _principal.set(principal)
            try:
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await fail(context, exc)
            finally:
                _principal.reset(token)

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return factory(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if error is not None:
            await fail(context, error)
        assert principal is not None
        token = _principal.set(principal)
        try:
            async for item in inner_stream(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await fail(context, exc)
        finally:
            _principal.reset(token)

    factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return factory(streaming, handler.request_deserializer, handler.response_serializer)
