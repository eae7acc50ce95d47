"""One server interceptor for authentication and error mapping.

It authenticates every call except health and reflection, hands the Principal to the
servicer through a context variable, and turns CloudpipeError into the matching gRPC
status. Any other exception is a bug: INTERNAL for the caller, the traceback in the
server log only.

Credentials travel as metadata: `authorization: Bearer <api key>` and, optionally,
`x-cloudpipe-account: <account name>`.

Failed authentications are counted per peer address (`FailureLimiter`; an IPv6 peer
by its /64); past the budget a peer's failed attempts get RESOURCE_EXHAUSTED instead of
UNAUTHENTICATED. The credentials are checked first and valid ones are never refused:
many users share one peer behind the HTTP gateway, and one of them guessing keys must
not lock the others (the admin included) out. A call refused by authentication
carries the trailing metadata `x-cloudpipe-auth` (`failed`, `throttled` or
`unavailable`), so the HTTP gateway can tell an auth-service outage (ACONN) from a
store outage.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import grpc

from cloudpipe_common.logs import bind_log_context
from cloudpipe_common.ratelimit import FailureLimiter, address_key
from cloudpipe_server.auth.base import Authenticator, Principal
from cloudpipe_server.errors import CloudpipeError, TooManyAttempts, Unauthenticated, Unavailable, grpc_code

log = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ACCOUNT_HEADER = "x-cloudpipe-account"
AUTH_TRAILER = "x-cloudpipe-auth"

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("cloudpipe_principal")


def current_principal() -> Principal:
    """The caller of the RPC being served (set by `AuthInterceptor`)."""
    return _principal.get()


Authenticate = Callable[[grpc.aio.ServicerContext], Awaitable[Principal]]


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        authenticator: Authenticator,
        limiter: FailureLimiter | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._limiter = limiter
        self._on_failure = on_failure  # gets "failed", "throttled" or "unavailable" (metrics)

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
        raw_account = metadata.get(ACCOUNT_HEADER)
        account = str(raw_account) if raw_account else None

        async def authenticate(context: grpc.aio.ServicerContext) -> Principal:
            peer = f"peer:{_peer_host(context.peer())}"
            try:
                try:
                    principal = await self._authenticator.authenticate(account, key)
                    # the rest of the RPC (its own task) logs with the caller's account
                    bind_log_context(account=principal.account)
                    return principal
                except Unauthenticated:
                    if self._limiter is not None:
                        self._limiter.check(peer)  # past the budget: throttled
                        self._limiter.fail(peer)
                    raise
            except CloudpipeError as exc:
                log.info("rejected %s from %s: %s", method, peer, exc)
                if self._on_failure is not None:
                    self._on_failure(_auth_trailer(exc)[0][1])
                await context.abort(grpc_code(exc), str(exc), trailing_metadata=_auth_trailer(exc))
                raise AssertionError("unreachable") from None

        return _wrap(handler, authenticate)


def _peer_host(peer: str | None) -> str:
    """The limiter's name for a gRPC peer: `ipv4:1.2.3.4:5678` -> `1.2.3.4`,
    `ipv6:[2001:db8::1]:5678` -> `2001:db8::/64` (`address_key`); others unchanged."""
    if not peer:
        return "unknown"
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return address_key(unquote(rest).rsplit(":", 1)[0])
    return peer


def _auth_trailer(exc: CloudpipeError) -> tuple[tuple[str, str], ...]:
    if isinstance(exc, TooManyAttempts):
        return ((AUTH_TRAILER, "throttled"), ("retry-after", str(int(exc.retry_after))))
    if isinstance(exc, Unavailable):
        return ((AUTH_TRAILER, "unavailable"),)
    return ((AUTH_TRAILER, "failed"),)


def _wrap(handler: grpc.RpcMethodHandler, authenticate: Authenticate) -> Any:
    """The same handler, run after authentication with the principal set and errors
    (the authenticator's too) mapped to statuses."""

    async def fail(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        if isinstance(exc, CloudpipeError):
            await context.abort(grpc_code(exc), str(exc))
        log.error("internal error in %s", handler, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal server error")

    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                token = _principal.set(await authenticate(context))
                try:
                    return await inner(request, context)
                finally:
                    _reset(token)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await fail(context, exc)

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return factory(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            token = _principal.set(await authenticate(context))
            try:
                async for item in inner_stream(request, context):
                    yield item
            finally:
                _reset(token)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await fail(context, exc)

    factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return factory(streaming, handler.request_deserializer, handler.response_serializer)


def _reset(token: contextvars.Token[Principal]) -> None:
    """Undo `_principal.set`. A streaming handler may be finalised from another context
    (the client went away): each RPC sets its own principal, so there is nothing to undo."""
    try:
        _principal.reset(token)
    except ValueError:
        pass
