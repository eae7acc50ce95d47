"""The web UI's secrets routes under `/ui/api/`, over the gRPC `SecretService` on the
gateway's channel. Names and times only ever go out; a value only ever comes in.

    GET  /ui/api/secrets                        {"secrets": [secret...]} by name
    POST /ui/api/secret/set     name=X, value=V {"name", "created_at", "updated_at"}
    POST /ui/api/secret/delete  name=X          {"deleted": X}

Every call carries the caller's credentials and the server scopes it to the caller's
account, so another account's secret looks missing (404). The name and the value are
the server's to check (a bad name, a value over its limit: its INVALID_ARGUMENT, 400),
answered by meaning through ui_errors. The gateway never logs a form, and a value is
never part of an answer, an error message or a log line.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from cloudpipe_proto.v1 import secrets_pb2 as pb
from http_gateway import multyvac
from http_gateway.caller import Caller
from http_gateway.job_json import stamp
from http_gateway.multyvac import ApiError, Reply
from http_gateway.request_body import read_form
from http_gateway.ui_schedules import Services

MAX_VALUE_BYTES = 64 << 10  # the server's limit on a value
# A value at its limit, percent-encoded (three bytes per byte at worst), and a name.
MAX_FORM_BYTES = 3 * MAX_VALUE_BYTES + (4 << 10)
_HINT = "See docs/ui.md for the UI's routes."


def secret_json(secret: pb.Secret) -> dict[str, Any]:
    return {
        "name": secret.name,
        "created_at": stamp(secret.created_at) if secret.HasField("created_at") else "",
        "updated_at": stamp(secret.updated_at) if secret.HasField("updated_at") else "",
    }


def _qinval(message: str) -> ApiError:
    return ApiError(400, "QINVAL", message, _HINT)


class SecretApi:
    """The handlers; `gateway` supplies the credentials and the gRPC calls."""

    def __init__(self, gateway: Services) -> None:
        self._gateway = gateway

    async def _verified(self, caller: Caller, error: ApiError) -> ApiError:
        """`error` once the server has accepted the credentials (bad credentials beat bad input)."""
        await self._gateway.call_service("secrets", "List", pb.ListSecretsRequest(), caller)
        return error

    async def _form(self, request: Request, caller: Caller) -> dict[str, list[str]]:
        return await read_form(request, MAX_FORM_BYTES, lambda error: self._verified(caller, error), strict=True)

    async def _named(self, values: dict[str, list[str]], caller: Caller) -> str:
        name = values.get("name", [""])[0].strip()
        if not name:
            raise await self._verified(caller, _qinval("Name a secret in name"))
        return name

    async def secrets(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        answer = await self._gateway.call_service("secrets", "List", pb.ListSecretsRequest(), caller)
        listed = sorted(answer.secrets, key=lambda s: s.name)
        return multyvac.json_reply({"secrets": [secret_json(s) for s in listed]})

    async def set(self, request: Request) -> Reply:
        """Create the secret or replace its value; the value as UTF-8, exactly as typed
        (an empty value is refused here: it is always a mistake in a form)."""
        caller = self._gateway.caller(request)
        values = await self._form(request, caller)
        name = await self._named(values, caller)
        given = values.get("value", [""])
        if len(given) != 1 or not given[0]:
            raise await self._verified(caller, _qinval("Give the secret's value in value, once"))
        value = given[0].encode("utf-8")
        if len(value) > MAX_VALUE_BYTES:
            raise await self._verified(caller, _qinval(f"A secret's value is at most {MAX_VALUE_BYTES} bytes"))
        made = await self._gateway.call_service("secrets", "Set", pb.SetSecretRequest(name=name, value=value), caller)
        return multyvac.json_reply(secret_json(made))

    async def delete(self, request: Request) -> Reply:
        caller = self._gateway.caller(request)
        name = await self._named(await self._form(request, caller), caller)
        await self._gateway.call_service("secrets", "Delete", pb.DeleteSecretRequest(name=name), caller)
        return multyvac.json_reply({"deleted": name})
