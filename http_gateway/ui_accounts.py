"""The web UI's accounts and keys routes under `/ui/api/auth/`: the auth service's JSON
API (its external listener, `--auth-url`), relayed so the pages talk to the gateway
alone (the CSP allows nothing else) and the auth service's answers are re-shaped into
the gateway's envelope.

    GET  /ui/api/auth/signup                 {"configured", "open", "min_password_length"}
    POST /ui/api/auth/signup   account, password           {"account"}; 403 while sign-up is closed
    POST /ui/api/auth/login    account, password           {"account", "token", "expires_at"}
    POST /ui/api/auth/logout                               {}
    GET  /ui/api/auth/keys                                 {"keys": [key...]}
    POST /ui/api/auth/keys     name                        {"key": key, "secret": the key, once}
    POST /ui/api/auth/keys/revoke  id                      {}
    GET  /ui/api/auth/admin/accounts                       {"accounts": [account...]}
    POST /ui/api/auth/admin/accounts  account, password    {"account"} (even with sign-up closed)
    POST /ui/api/auth/admin/account/disable  name, disabled=true|false   the account
    POST /ui/api/auth/admin/account/delete   name          {}
    GET  /ui/api/auth/admin/keys?name=                     {"keys": [key...]}
    POST /ui/api/auth/admin/keys/revoke-all  name          {"revoked": N}

Account routes take `Authorization: Bearer <token from login>`; admin routes `Bearer
<the auth service's admin token>`. The gateway keeps neither: it passes the header on.
Passwords, tokens and keys are never logged. Answers are read up to MAX_ANSWER_BYTES.
"""

from __future__ import annotations

import json
import logging
import ssl
import urllib.parse
from typing import Any

import httpx
from starlette.requests import Request

from http_gateway import multyvac
from http_gateway.golang import parse_query
from http_gateway.multyvac import ApiError, Reply
from http_gateway.request_body import as_is, read_form

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 << 10
MAX_ANSWER_BYTES = 8 << 20
MAX_FIELD = 1024
_CODES = {400: "QINVAL", 401: "SESSION", 403: "DENIED", 404: "NOTFOUND", 409: "CONFLICT", 429: "LIMIT"}


def _qinval(message: str) -> ApiError:
    return ApiError(400, "QINVAL", message, "See docs/ui.md for the UI's routes.")


def _key(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": raw.get("id", ""),
        "name": raw.get("name", ""),
        "created_at": raw.get("createdAt"),
        "last_used_at": raw.get("lastUsedAt"),
    }


def _account(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "account": raw.get("accountName", ""),
        "created_at": raw.get("createdAt"),
        "updated_at": raw.get("updatedAt"),
        "disabled": bool(raw.get("disabled", False)),
    }


class AccountsApi:
    """The handlers; `open()` makes the HTTPS client inside the serving event loop."""

    def __init__(self, auth_url: str, auth_ca: str, timeout: float) -> None:
        self._base = auth_url.rstrip("/")
        self._ca = auth_ca
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if not self._base:
            return
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self._ca or None)
        self._client = httpx.AsyncClient(base_url=self._base, verify=verify, timeout=self._timeout)
        log.info("web UI accounts through the auth service at %s", self._base)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- plumbing -------------------------------------------------------------------------

    def _ready(self) -> httpx.AsyncClient:
        if self._client is None:
            raise ApiError(
                501,
                "NOAUTH",
                "This gateway is not connected to an auth service.",
                "Start the gateway with --auth-url (CLOUDPIPE_GATEWAY_AUTH_URL); see docs/ui.md.",
            )
        return self._client

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        values = await read_form(request, MAX_FORM_BYTES, as_is)
        return {key: found[0] for key, found in values.items() if found}

    @staticmethod
    def _get_only(request: Request) -> None:
        if request.method != "GET":
            raise multyvac.minval("GET")

    @staticmethod
    def _field(form: dict[str, str], key: str) -> str:
        value = form.get(key, "")
        if not value:
            raise _qinval(f"{key} is required")
        if len(value) > MAX_FIELD:
            raise _qinval(f"{key} is longer than {MAX_FIELD} characters")
        return value

    @staticmethod
    def _path_name(name: str) -> str:
        """An account name as one path segment of the auth service's URL."""
        if "/" in name or name in (".", "..") or not name.strip() or len(name) > MAX_FIELD:
            raise _qinval(f"Not an account name: {name[:80]!r}")
        return urllib.parse.quote(name, safe="@")

    @staticmethod
    def _bearer(request: Request) -> dict[str, str]:
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer " or not header[7:].strip():
            raise ApiError(401, "SESSION", "Sign in first.", "Sign in with your account name and password.")
        return {"authorization": header}

    async def _call(
        self,
        request: Request,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """The auth service's status and JSON answer; its errors as ApiError. The client's
        address goes along as X-Forwarded-For (for the auth service's failure limiter, when
        it trusts this gateway: CLOUDPIPE_AUTH_TRUSTED_PROXIES)."""
        client = self._ready()
        sent = {**(headers or {}), "x-forwarded-for": request.client.host if request.client else "unknown"}
        try:
            async with client.stream(method, path, json=body, headers=sent) as response:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        raise ApiError(502, "AUTHSVC", "The auth service's answer is too large.")
                status = response.status_code
        except httpx.HTTPError as exc:
            log.warning("auth service %s %s failed: %s", method, path.split("/")[2], type(exc).__name__)
            raise ApiError(503, "ACONN", "The auth service is unreachable.", "Try again shortly.", retry=True) from None
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        if status >= 400:
            message = answer.get("message", "") if isinstance(answer, dict) else ""
            if status >= 500 or status not in _CODES:
                raise ApiError(502, "AUTHSVC", message or f"The auth service answered {status}.", retry=True)
            raise ApiError(status, _CODES[status], message or f"The auth service answered {status}.")
        return status, answer

    # -- people ---------------------------------------------------------------------------

    async def signup(self, request: Request) -> Reply:
        if request.method == "GET":
            if self._client is None:
                return multyvac.json_reply({"configured": False, "open": False, "min_password_length": 0})
            _status, policy = await self._call(request, "GET", "/v2/signup")
            return multyvac.json_reply(
                {
                    "configured": True,
                    "open": bool(policy.get("open")),
                    "min_password_length": int(policy.get("minPasswordLength", 0)),
                }
            )
        form = await self._form(request)
        body = {"accountName": self._field(form, "account"), "password": self._field(form, "password")}
        _status, created = await self._call(request, "POST", "/v2/accounts", body=body)
        return multyvac.json_reply({"account": created.get("accountName", body["accountName"])})

    async def login(self, request: Request) -> Reply:
        form = await self._form(request)
        body = {"accountName": self._field(form, "account"), "password": self._field(form, "password")}
        _status, session = await self._call(request, "POST", "/v2/login", body=body)
        return multyvac.json_reply(
            {"account": session["accountName"], "token": session["token"], "expires_at": session.get("expiresAt")}
        )

    async def logout(self, request: Request) -> Reply:
        await self._form(request)
        await self._call(request, "POST", "/v2/logout", headers=self._bearer(request))
        return multyvac.json_reply({})

    async def keys(self, request: Request) -> Reply:
        if request.method == "GET":
            _status, listed = await self._call(request, "GET", "/v2/keys", headers=self._bearer(request))
            return multyvac.json_reply({"keys": [_key(k) for k in listed.get("keys", [])]})
        form = await self._form(request)
        name = form.get("name", "").strip()
        if len(name) > MAX_FIELD:
            raise _qinval(f"name is longer than {MAX_FIELD} characters")
        _status, made = await self._call(
            request, "POST", "/v2/keys", body={"name": name}, headers=self._bearer(request)
        )
        return multyvac.json_reply({"key": _key(made), "secret": made["key"]})

    async def revoke_key(self, request: Request) -> Reply:
        form = await self._form(request)
        key_id = self._field(form, "id")
        if not key_id.replace("_", "").isalnum():
            raise _qinval("id is not a key id")
        await self._call(request, "DELETE", f"/v2/keys/{key_id}", headers=self._bearer(request))
        return multyvac.json_reply({})

    # -- the admin ------------------------------------------------------------------------

    async def admin_accounts(self, request: Request) -> Reply:
        if request.method == "GET":
            _status, listed = await self._call(request, "GET", "/v2/admin/accounts", headers=self._bearer(request))
            accounts = sorted((_account(a) for a in listed.get("accounts", [])), key=lambda a: a["account"])
            return multyvac.json_reply({"accounts": accounts})
        form = await self._form(request)
        body = {"accountName": self._field(form, "account"), "password": self._field(form, "password")}
        _status, created = await self._call(
            request, "POST", "/v2/admin/accounts", body=body, headers=self._bearer(request)
        )
        return multyvac.json_reply(_account(created))

    async def admin_disable(self, request: Request) -> Reply:
        form = await self._form(request)
        name = self._path_name(self._field(form, "name"))
        disabled = form.get("disabled", "")
        if disabled not in ("true", "false"):
            raise _qinval("disabled is true or false")
        body = {"disabled": disabled == "true"}
        _status, account = await self._call(
            request, "PATCH", f"/v2/admin/accounts/{name}", body=body, headers=self._bearer(request)
        )
        return multyvac.json_reply(_account(account))

    async def admin_delete(self, request: Request) -> Reply:
        form = await self._form(request)
        name = self._path_name(self._field(form, "name"))
        await self._call(request, "DELETE", f"/v2/admin/accounts/{name}", headers=self._bearer(request))
        return multyvac.json_reply({})

    async def admin_keys(self, request: Request) -> Reply:
        self._get_only(request)
        values, _error = parse_query(request.scope["query_string"])
        name = self._path_name(values.get("name", [""])[0])
        _status, listed = await self._call(
            request, "GET", f"/v2/admin/accounts/{name}/keys", headers=self._bearer(request)
        )
        return multyvac.json_reply({"keys": [_key(k) for k in listed.get("keys", [])]})

    async def admin_revoke_all(self, request: Request) -> Reply:
        form = await self._form(request)
        name = self._path_name(self._field(form, "name"))
        _status, answer = await self._call(
            request, "DELETE", f"/v2/admin/accounts/{name}/keys", headers=self._bearer(request)
        )
        return multyvac.json_reply({"revoked": int(answer.get("revoked", 0))})
