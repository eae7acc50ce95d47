"""The web UI: static files from `http_gateway/ui/` under `/ui/`, and the two small
JSON answers of `/ui/api/...` that the multyvac API cannot give.

The pages are plain HTML, CSS and vanilla JS with no build step. They call the
multyvac routes (`GET /v1/job`, `POST /v1/job/kill`) with the Basic credentials the
user typed in, and `/ui/api/...` only for what the Go job JSON has no field for: a
job's image and reason, and the gRPC address of the server (for the SDK snippet).
`/ui/api/...` answers errors in the same Go envelope as `/v1/...`.

Every UI response carries a strict Content-Security-Policy (scripts and styles from
`/ui/` only, no inline code, no framing): job data is rendered as text by the pages,
and the policy is a second wall should a page ever get that wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudpipe_proto.v1 import jobs_pb2 as pb
from http_gateway import job_json, multyvac
from http_gateway.golang import GoError, parse_query, parse_uint
from http_gateway.multyvac import ApiError

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).resolve().parent / "ui"
SECURITY_HEADERS: Mapping[str, str] = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # revalidate (ETag): a new gateway version shows at once
}


class WithHeaders:
    """An ASGI app that adds `headers` to every response of `app`."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str]) -> None:
        self._app = app
        self._headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._headers]
            await send(message)

        await self._app(scope, receive, send_with_headers)


def static_app(directory: Path = UI_DIR) -> ASGIApp:
    """The UI's files (`index.html` for `/ui/`), with the security headers. A missing
    directory (an install without the package data) only disables the UI."""
    if not directory.is_dir():
        log.warning("web UI disabled: %s is missing", directory)
    return WithHeaders(StaticFiles(directory=directory, html=True, check_dir=False), SECURITY_HEADERS)


def parse_jid(raw_query: bytes) -> int:
    """The `jid` of `/ui/api/job?jid=N`; a missing or malformed one is 400 QINVAL with
    the message `GET /v1/job` gives for a bad JID, one that cannot exist is 404 JNF."""
    values, _error = parse_query(raw_query)
    raw = values.get("jid", [""])[0]
    try:
        jid = parse_uint(raw)
    except GoError as exc:
        raise ApiError(400, "QINVAL", f"Unable to parse JID [{raw}]: {exc}", "Please only use valid JIDs.") from None
    if not 0 < jid <= multyvac.MAX_JID:
        raise multyvac.jnf(jid)
    return jid


def job_detail(job: pb.Job, default_image: str) -> dict[str, Any]:
    """The Go job JSON of `GET /v1/job`, plus what it has no field for: `image` (the
    default image too, where the Go JSON shows `layer: []`), `reason` and `attempts`."""
    detail = job_json.render_job(job, default_image)
    detail["image"] = job.spec.image or default_image
    detail["reason"] = job.reason
    detail["attempts"] = job.attempts
    return detail
