"""The web UI's quota routes under `/ui/api/`, over the gRPC `QuotaService` on the
gateway's channel (the admin page's Quotas section).

    GET  /ui/api/quotas                       {"defaults": limits, "accounts": [quotas...]} by account
    GET  /ui/api/quota?account=NAME           quotas (no account: the caller's)
    POST /ui/api/quota/set  account=NAME, max_queued=N, max_running=N   quotas
         (a field empty or left out: the server's default again; both: the override cleared)

    limits: {"max_queued": N | null, "max_running": N | null}   (null: the default; 0: no limit)
    quotas: {"account", "override": limits, "max_queued": N, "max_running": N, "updated_at"}

Every call carries the caller's credentials (the API key session of the jobs pages, as
Basic auth: no cookie, so no cross-site request can carry it); the server decides who
may (the admin: PERMISSION_DENIED for others, 403), and checks the limits and the
account (400, 404), answered by meaning through ui_errors.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from cloudpipe_proto.v1 import quotas_pb2 as pb
from http_gateway import multyvac
from http_gateway.caller import Caller
from http_gateway.golang import parse_query
from http_gateway.job_json import stamp
from http_gateway.multyvac import ApiError, Reply
from http_gateway.request_body import read_form
from http_gateway.ui_schedules import Services

MAX_FORM_BYTES = 4 << 10
MAX_LIMIT_DIGITS = 9  # past the server's largest limit (1,000,000), within int64
_HINT = "See docs/ui.md for the UI's routes."


def _qinval(message: str) -> ApiError:
    return ApiError(400, "QINVAL", message, _HINT)


def limits_json(message: pb.QuotaLimits) -> dict[str, int | None]:
    return {
        "max_queued": message.max_queued if message.HasField("max_queued") else None,
        "max_running": message.max_running if message.HasField("max_running") else None,
    }


def quotas_json(message: pb.AccountQuotas) -> dict[str, Any]:
    return {
        "account": message.account,
        "override": limits_json(message.override),
        "max_queued": message.effective.max_queued,
        "max_running": message.effective.max_running,
        "updated_at": stamp(message.updated_at) if message.HasField("updated_at") else "",
    }


def _limit(values: dict[str, list[str]], key: str) -> int | None:
    given = values.get(key, [""])
    if len(given) != 1:
        raise _qinval(f"Give {key} once")
    text = given[0].strip()
    if not text:
        return None
    # ASCII digits only (str.isdigit takes '²' too, which int() refuses), and short enough
    # for the int64 field: a negative number or a huge one is the server's to refuse
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_LIMIT_DIGITS):
        raise _qinval(f"{key} is a whole number of jobs (0: no limit), or empty for the server's default")
    return int(text)


class QuotaApi:
    """The handlers; `gateway` supplies the credentials and the gRPC calls."""

    def __init__(self, gateway: Services) -> None:
        self._gateway = gateway

    async def quotas(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        answer = await self._gateway.call_service("quotas", "List", pb.ListQuotasRequest(), caller)
        return multyvac.json_reply(
            {"defaults": limits_json(answer.defaults), "accounts": [quotas_json(q) for q in answer.accounts]}
        )

    async def quota(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        values, _error = parse_query(request.scope["query_string"])
        ask = pb.GetQuotasRequest(account=values.get("account", [""])[0].strip())
        return multyvac.json_reply(quotas_json(await self._gateway.call_service("quotas", "Get", ask, caller)))

    async def _verified(self, caller: Caller, error: ApiError) -> ApiError:
        """`error` once the server has accepted the credentials (bad credentials beat bad input)."""
        await self._gateway.call_service("quotas", "Get", pb.GetQuotasRequest(), caller)
        return error

    async def set(self, request: Request) -> Reply:
        if request.method != "POST":
            raise multyvac.minval("POST")
        caller = self._gateway.caller(request)
        values = await read_form(request, MAX_FORM_BYTES, lambda error: self._verified(caller, error), strict=True)
        account = values.get("account", [""])[0].strip()
        if not account:
            raise await self._verified(caller, _qinval("Name the account in account"))
        override = pb.QuotaLimits()
        try:
            max_queued, max_running = _limit(values, "max_queued"), _limit(values, "max_running")
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        if max_queued is not None:
            override.max_queued = max_queued
        if max_running is not None:
            override.max_running = max_running
        ask = pb.SetQuotasRequest(account=account, override=override)
        return multyvac.json_reply(quotas_json(await self._gateway.call_service("quotas", "Set", ask, caller)))
