"""The external listener (TLS, for people and UIs).

Compatible with the original auth-store (spec 5.3), form-encoded:

    any path             200 text/plain "auth-store external API alive and running.\\n"
    POST   /v1/accounts  accountName, password -> 201 empty; 409 taken (or a deleted account's); 400 missing/invalid
    POST   /v1/keys      accountName, password -> 200 text/plain, the new 128-hex key (shown once)
    DELETE /v1/keys      accountName, apiKey   -> 204 revoked; 401 not that account's key

DECISION (spec 10.14, revocation without a password): holding the key is the owner's
credential for that key, as in the original, so a leaked key can be killed by whoever
finds it; but the key must belong to `accountName` (401 otherwise, counted as a failed
attempt), where the original answered 204 for anything.

JSON API (`/v2`): sign-up, login sessions, named keys with created/last-used times,
revoke by id, change password, and an admin API; see `json_api.py`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cloudpipe_auth.core import BAD_LOGIN, AccountService
from cloudpipe_auth.json_api import json_routes
from cloudpipe_auth.store import RetiredName
from cloudpipe_auth.web import (
    ALL_METHODS,
    PLAIN,
    AccessLog,
    error_response,
    form_values,
    handled,
    message,
    source,
    unsupported,
)
from cloudpipe_common.errors import AlreadyExists, CloudpipeError, Unauthenticated

HEARTBEAT = b"auth-store external API alive and running.\n"


def create_external_app(service: AccountService) -> AccessLog:
    async def accounts(request: Request) -> Response:
        if request.method != "POST":
            return unsupported(request.method, "POST")
        values = await form_values(request)
        name, password = values.get("accountName", ""), values.get("password", "")
        if not name or not password:
            return message(400, 'Missing required parameters "accountName" and "password".')
        try:
            await service.create_account(name, password)
        except RetiredName as exc:
            return message(409, f"{exc} Please choose another.")
        except AlreadyExists:
            return message(409, f'The account name "{name}" has already been taken. Please choose another.')
        except CloudpipeError as exc:
            return error_response(exc, "Internal storage error.")
        return Response(status_code=201)

    async def keys(request: Request) -> Response:
        if request.method == "POST":
            return await create_key(request)
        if request.method == "DELETE":
            return await revoke_key(request)
        return unsupported(request.method, "POST or DELETE")

    async def create_key(request: Request) -> Response:
        values = await form_values(request)
        name, password = values.get("accountName", ""), values.get("password", "")
        if not name or not password:
            return message(400, 'Missing required parameters "accountName" and "password".')
        try:
            await service.check_password(name, password, source(request))
            new = await service.issue_key(name, values.get("name", ""))
        except Unauthenticated:
            return message(401, BAD_LOGIN)
        except CloudpipeError as exc:
            return error_response(exc)
        return Response(new.secret, headers={**PLAIN, "cache-control": "no-store"})

    async def revoke_key(request: Request) -> Response:
        values = await form_values(request)
        name, key = values.get("accountName", ""), values.get("apiKey", "")
        if not name or not key:
            return message(400, 'Missing required parameters "accountName" and "apiKey".')
        try:
            await service.revoke_key_by_secret(name, key, source(request))
        except CloudpipeError as exc:
            return error_response(exc)
        return Response(status_code=204)

    async def heartbeat(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(HEARTBEAT, headers=PLAIN)(scope, receive, send)

    app = Starlette(
        routes=[
            Route("/v1/accounts", handled(accounts), methods=ALL_METHODS),
            Route("/v1/keys", handled(keys), methods=ALL_METHODS),
            *json_routes(service),
        ]
    )
    app.router.redirect_slashes = False
    app.router.default = heartbeat
    return AccessLog(app, "external")
