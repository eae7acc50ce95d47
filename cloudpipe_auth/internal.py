"""The internal listener (mutual TLS; only certificates of the internal CA get here),
compatible with the original auth-store's internal API (spec 5.3):

    any path                     200 text/plain  "auth-store internal API alive and running.\\n"
    GET /v1/style                200 text/plain  "auth-store"
    GET /v1/validate?accountName=&apiKey=
                                 204 valid, 404 invalid, 400 a parameter missing or empty,
                                 405 another method, 429 too many failed checks, 500 storage
    GET /v1/validate?apiKey=     (extension: no accountName parameter at all)
                                 200 {"accountName": "..."} or 404: keys are globally
                                 unique by hash, so a key alone names its account
    GET /v1/account?accountName= (extension) 200 {"accountName", "state"}: "active",
                                 "disabled" or "deleted" (a deleted account's name is kept
                                 and never registered again); 404 never registered. The
                                 servers ask it before firing an account's schedules.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cloudpipe_auth.core import AccountService
from cloudpipe_auth.web import (
    ALL_METHODS,
    PLAIN,
    AccessLog,
    error_response,
    form_values,
    json_response,
    message,
    unsupported,
)
from cloudpipe_common.errors import CloudpipeError

STYLE = "auth-store"
HEARTBEAT = b"auth-store internal API alive and running.\n"
MISSING = 'Missing required parameters "accountName" and "apiKey".'
STORAGE = "Internal storage error encountered. Please try again later."


def create_internal_app(service: AccountService) -> AccessLog:
    async def style(request: Request) -> Response:
        if request.method != "GET":
            return unsupported(request.method)
        return Response(STYLE, headers=PLAIN)

    async def validate(request: Request) -> Response:
        if request.method != "GET":
            return unsupported(request.method)
        values = await form_values(request)
        key = values.get("apiKey", "")
        if not key:
            return message(400, MISSING)
        try:
            if "accountName" not in values:
                owner = await service.validate(None, key)
                return json_response({"accountName": owner}) if owner else Response(status_code=404)
            account = values["accountName"]
            if not account:
                return message(400, MISSING)
            owner = await service.validate(account, key)
        except CloudpipeError as exc:
            return error_response(exc, STORAGE)
        return Response(status_code=204 if owner else 404)

    async def account(request: Request) -> Response:
        if request.method != "GET":
            return unsupported(request.method)
        name = (await form_values(request)).get("accountName", "")
        if not name:
            return message(400, 'Missing required parameter "accountName".')
        try:
            state = await service.account_state(name)
        except CloudpipeError as exc:
            return error_response(exc, STORAGE)
        if state is None:
            return Response(status_code=404)
        return json_response({"accountName": name, "state": state.value})

    async def heartbeat(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(HEARTBEAT, headers=PLAIN)(scope, receive, send)

    app = Starlette(
        routes=[
            Route("/v1/style", style, methods=ALL_METHODS),
            Route("/v1/validate", validate, methods=ALL_METHODS),
            Route("/v1/account", account, methods=ALL_METHODS),
        ]
    )
    app.router.redirect_slashes = False
    app.router.default = heartbeat
    return AccessLog(app, "internal")
