"""How the gateway's own routes (the UI's, multyvac's volumes) read a body, written
once: counted as it comes (a chunked body declares no length), refused past a limit with
413, and parsed as a form. `refuse` turns a refusal into what the route raises; most
routes first have the server check the credentials there, so that bad credentials beat
bad input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from http_gateway import multyvac
from http_gateway.golang import parse_query
from http_gateway.multyvac import ApiError

Refuse = Callable[[ApiError], Awaitable[ApiError]]


async def as_is(error: ApiError) -> ApiError:
    """A `refuse` for routes whose credentials are not the server's (the auth pages)."""
    return error


async def read_body(request: Request, limit: int, refuse: Refuse, what: str = "The form") -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise await refuse(ApiError(413, "QINVAL", f"{what} is over {limit} bytes"))
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, limit: int, refuse: Refuse, *, strict: bool = False) -> dict[str, list[str]]:
    """The POST form's values by name. `strict`: a malformed %-escape is refused (400),
    with a message that never quotes the form (it may hold a secret); otherwise the pair
    is skipped, as Go's ParseQuery does."""
    if request.method != "POST":
        raise multyvac.minval("POST")
    values, error = parse_query(await read_body(request, limit, refuse))
    if strict and error is not None:
        raise await refuse(ApiError(400, "QINVAL", "The form has a malformed %-escape", "See docs/ui.md."))
    return values
