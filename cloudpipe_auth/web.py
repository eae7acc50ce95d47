"""HTTP plumbing shared by the two listeners: the `{"message": ...}` error body of the
original auth-store, the mapping of CloudpipeError onto it, form values read the way
Go's `FormValue` read them, and an access log that never prints a query string (the
internal API carries API keys in it)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudpipe_common.errors import CloudpipeError, InvalidArgument, StoreUnavailable, TooManyAttempts, http_status
from cloudpipe_common.ratelimit import address_key

log = logging.getLogger("cloudpipe_auth.access")

PLAIN = {"content-type": "text/plain"}  # exactly, as the original's handlers set it
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_BODY = 64 << 10
Endpoint = Callable[[Request], Awaitable[Response]]


def message(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    """`{"message":"..."}\\n` as the original's encoder wrote it, with a real JSON type."""
    body = json.dumps({"message": text}, separators=(",", ":")) + "\n"
    return Response(body, status, headers=headers, media_type="application/json")


def json_response(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, separators=(",", ":")) + "\n", status, media_type="application/json")


def unsupported(method: str, allowed: str = "GET") -> Response:
    return message(405, f"Unsupported method {method}. Only {allowed} is accepted for this resource.")


def error_response(
    exc: CloudpipeError, storage_text: str = "Internal storage error. Please try again later."
) -> Response:
    if isinstance(exc, TooManyAttempts):
        return message(429, str(exc), {"retry-after": str(int(exc.retry_after))})
    if isinstance(exc, StoreUnavailable):
        log.error("account store failed: %s", exc)
        return message(500, storage_text)
    return message(http_status(exc), str(exc))


def handled(endpoint: Endpoint) -> Endpoint:
    """An endpoint whose CloudpipeErrors become `{"message"}` answers."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except CloudpipeError as exc:
            return error_response(exc)

    return run


async def form_values(request: Request) -> dict[str, str]:
    """Query values, overridden by an urlencoded body (Go's `FormValue`); first value wins."""
    values: dict[str, str] = {}
    for key, value in parse_qsl(request.url.query, keep_blank_values=True):
        values.setdefault(key, value)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and content_type == "application/x-www-form-urlencoded":
        body = await read_body(request)
        posted: dict[str, str] = {}
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            posted.setdefault(key, value)
        values.update(posted)
    return values


async def read_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise InvalidArgument(f"The request body is larger than {MAX_BODY} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request)
    try:
        value = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise InvalidArgument("The request body must be a JSON object.") from None
    if not isinstance(value, dict):
        raise InvalidArgument("The request body must be a JSON object.")
    return value


def source(request: Request) -> str:
    """The client for the limiter's `source:` buckets: its address, an IPv6 one by its /64."""
    return address_key(request.client.host) if request.client else "unknown"


class AccessLog:
    """Logs `METHOD /path STATUS seconds client` for every request; never the query."""

    def __init__(self, app: ASGIApp, listener: str) -> None:
        self._app = app
        self._listener = listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info(
                "%s %s %s %d %.3fs %s",
                self._listener,
                scope["method"],
                scope["path"],
                status,
                time.monotonic() - started,
                client[0],
            )
