"""The JSON API of the external listener. Bodies and answers are JSON objects; errors
are `{"message": "..."}` with the status of the error (400, 401, 403, 404, 409, 429).

    GET    /v2/signup                                                 200 {open, minPasswordLength}
    POST   /v2/accounts              {accountName, password}          201 {accountName, createdAt}
    POST   /v2/login                 {accountName, password}          200 {accountName, token, expiresAt}
    POST   /v2/logout                                                 204
    GET    /v2/account                                                200 {accountName, createdAt, updatedAt}
    POST   /v2/account/password      {currentPassword, newPassword}   204 (every session ends)
    GET    /v2/keys                                                   200 {keys: [{id, name, createdAt, lastUsedAt}]}
    POST   /v2/keys                  {name}                           201 {id, name, createdAt, lastUsedAt, key}
    DELETE /v2/keys/{id}                                              204; 404 not yours
    GET    /v2/admin/accounts                                         200 {accounts: [...]}
    POST   /v2/admin/accounts        {accountName, password}          201 (even with sign-up closed)
    PATCH  /v2/admin/accounts/{name} {disabled: bool}                 200 the account
    DELETE /v2/admin/accounts/{name}                                  204 (keys and sessions too)
    GET    /v2/admin/accounts/{name}/keys                             200 {keys: [...]}
    DELETE /v2/admin/accounts/{name}/keys                             200 {revoked: N}

Account endpoints take `Authorization: Bearer <session token>` (from /v2/login) or
`Basic account:password`; admin endpoints take `Authorization: Bearer <admin token>`
(CLOUDPIPE_AUTH_ADMIN_TOKEN). A key's secret appears once, in the answer that creates it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cloudpipe_auth.core import AccountService
from cloudpipe_auth.store import Account, ApiKey
from cloudpipe_auth.web import handled, json_body, json_response, source
from cloudpipe_common.errors import InvalidArgument, Unauthenticated

NO_STORE = {"cache-control": "no-store"}


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_json(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "createdAt": iso(key.created_at), "lastUsedAt": iso(key.last_used_at)}


def account_json(account: Account) -> dict[str, Any]:
    return {
        "accountName": account.name,
        "createdAt": iso(account.created_at),
        "updatedAt": iso(account.updated_at),
        "disabled": account.disabled,
    }


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f'"{field}" is required and must be a string.')
    return value


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def json_routes(service: AccountService) -> list[Route]:
    async def caller(request: Request) -> str:
        """The account behind a session token or Basic account:password."""
        header = request.headers.get("authorization", "")
        token = _bearer(request)
        if token:
            return await service.session_account(token, source(request))
        if header[:6].lower() == "basic ":
            try:
                name, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, ValueError):
                raise Unauthenticated("Malformed Basic credentials.") from None
            return (await service.check_password(name, password, source(request))).name
        raise Unauthenticated("Log in first: send Authorization: Bearer <token from /v2/login>.")

    def admin(request: Request) -> None:
        service.check_admin(_bearer(request) or "", source(request))

    async def signup_policy(request: Request) -> Response:
        """Whether sign-up is open (closed by default), for sign-up pages to say so."""
        return json_response({"open": service.signup_open, "minPasswordLength": service.min_password_length})

    async def signup(request: Request) -> Response:
        body = await json_body(request)
        account = await service.create_account(_text(body, "accountName"), _text(body, "password"))
        return json_response(account_json(account), 201)

    async def login(request: Request) -> Response:
        body = await json_body(request)
        name = _text(body, "accountName")
        token, expires = await service.login(name, _text(body, "password"), source(request))
        return Response(
            json_response({"accountName": name, "token": token, "expiresAt": iso(expires)}).body,
            headers=NO_STORE,
            media_type="application/json",
        )

    async def logout(request: Request) -> Response:
        account = await caller(request)
        await service.logout(account, _bearer(request) or "")
        return Response(status_code=204)

    async def account(request: Request) -> Response:
        return json_response(account_json(await service.get_account(await caller(request))))

    async def password(request: Request) -> Response:
        name = await caller(request)
        body = await json_body(request)
        await service.change_password(name, _text(body, "currentPassword"), _text(body, "newPassword"), source(request))
        return Response(status_code=204)

    async def keys(request: Request) -> Response:
        name = await caller(request)
        if request.method == "GET":
            return json_response({"keys": [key_json(k) for k in await service.list_keys(name)]})
        body = await json_body(request)
        label = body.get("name", "")
        if not isinstance(label, str):
            raise InvalidArgument('"name" must be a string.')
        new = await service.issue_key(name, label)
        answer = {**key_json(new.record), "key": new.secret}
        return Response(json_response(answer).body, 201, headers=NO_STORE, media_type="application/json")

    async def key(request: Request) -> Response:
        await service.revoke_key(await caller(request), request.path_params["key_id"])
        return Response(status_code=204)

    async def admin_accounts(request: Request) -> Response:
        admin(request)
        if request.method == "GET":
            return json_response({"accounts": [account_json(a) for a in await service.list_accounts()]})
        body = await json_body(request)
        created = await service.create_account(_text(body, "accountName"), _text(body, "password"), by_admin=True)
        return json_response(account_json(created), 201)

    async def admin_account(request: Request) -> Response:
        admin(request)
        name = request.path_params["name"]
        if request.method == "DELETE":
            await service.delete_account(name)
            return Response(status_code=204)
        body = await json_body(request)
        disabled = body.get("disabled")
        if not isinstance(disabled, bool):
            raise InvalidArgument('"disabled" is required and must be true or false.')
        return json_response(account_json(await service.set_disabled(name, disabled)))

    async def admin_keys(request: Request) -> Response:
        admin(request)
        name = request.path_params["name"]
        if request.method == "GET":
            await service.get_account(name)
            return json_response({"keys": [key_json(k) for k in await service.list_keys(name)]})
        return json_response({"revoked": await service.revoke_all_keys(name)})

    return [
        Route("/v2/signup", handled(signup_policy), methods=["GET"]),
        Route("/v2/accounts", handled(signup), methods=["POST"]),
        Route("/v2/login", handled(login), methods=["POST"]),
        Route("/v2/logout", handled(logout), methods=["POST"]),
        Route("/v2/account", handled(account), methods=["GET"]),
        Route("/v2/account/password", handled(password), methods=["POST"]),
        Route("/v2/keys", handled(keys), methods=["GET", "POST"]),
        Route("/v2/keys/{key_id}", handled(key), methods=["DELETE"]),
        Route("/v2/admin/accounts", handled(admin_accounts), methods=["GET", "POST"]),
        Route("/v2/admin/accounts/{name}", handled(admin_account), methods=["PATCH", "DELETE"]),
        Route("/v2/admin/accounts/{name}/keys", handled(admin_keys), methods=["GET", "DELETE"]),
    ]
