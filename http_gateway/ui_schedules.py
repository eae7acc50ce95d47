"""The web UI's schedules and saved jobs routes under `/ui/api/`, over the gRPC
`ScheduleService` and `SavedJobService` on the gateway's channel.

    GET  /ui/api/schedules                         {"schedules": [schedule...]}
    GET  /ui/api/schedule/history?name=&limit=     {"fires": [fire...]} newest first
    POST /ui/api/schedule/pause    name=X          the schedule
    POST /ui/api/schedule/resume   name=X          the schedule
    POST /ui/api/schedule/trigger  name=X          the fire it made
    GET  /ui/api/saved-jobs                        {"saved_jobs": [saved job...]} (latest versions)
    GET  /ui/api/saved-job?name=X&version=N        {"saved_job": ..., "versions": [...]} newest first
    POST /ui/api/saved-job/run     name, version, args (one a line), env (KEY=VALUE lines),
                                   image, max_runtime (seconds)    {"jid", "version"}

Every call carries the caller's credentials; the server scopes each to the caller's
account, so one account never sees another's schedules or saved jobs. A saved job's
stdin (a function's pickled call) never leaves the gateway: only its size does.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from starlette.requests import Request

from cloudpipe_proto.v1 import jobs_pb2 as jobs_pb
from cloudpipe_proto.v1 import schedules_pb2 as pb
from http_gateway import multyvac
from http_gateway.caller import Caller
from http_gateway.golang import GoError, parse_query, parse_uint
from http_gateway.job_json import ns, stamp
from http_gateway.multyvac import ApiError, Reply
from http_gateway.request_body import read_form
from http_gateway.ui_jobs import FUNCTION_TAG

MAX_FORM_BYTES = 64 << 10
MAX_NAME = 200
MAX_VERSIONS = 20  # versions shown on a saved job's page, newest first
DEFAULT_HISTORY = 20
MAX_HISTORY = 200
MAX_ARGS = 100
MAX_ENV = 100

_OVERLAP = {
    pb.OVERLAP_POLICY_UNSPECIFIED: "skip",
    pb.OVERLAP_POLICY_SKIP: "skip",
    pb.OVERLAP_POLICY_ALLOW: "allow",
    pb.OVERLAP_POLICY_BUFFER_ONE: "buffer_one",
    pb.OVERLAP_POLICY_CANCEL_PREVIOUS: "cancel_previous",
}
_CATCHUP = {
    pb.CATCHUP_POLICY_UNSPECIFIED: "run_once",
    pb.CATCHUP_POLICY_SKIP: "skip",
    pb.CATCHUP_POLICY_RUN_ONCE: "run_once",
    pb.CATCHUP_POLICY_RUN_ALL: "run_all",
}
_OUTCOME = {
    pb.FIRE_OUTCOME_PENDING: "pending",
    pb.FIRE_OUTCOME_BUFFERED: "buffered",
    pb.FIRE_OUTCOME_RUNNING: "running",
    pb.FIRE_OUTCOME_FINISHED: "finished",
    pb.FIRE_OUTCOME_SKIPPED: "skipped",
    pb.FIRE_OUTCOME_FAILED: "failed",
}


class Services(Protocol):
    """What these routes need of the gateway: credentials and calls to a service."""

    def caller(self, request: Request) -> Caller: ...

    async def call_service(self, service: str, method: str, request: Any, caller: Caller) -> Any: ...


def _qinval(message: str, hint: str = "See docs/ui.md for the UI's routes.") -> ApiError:
    return ApiError(400, "QINVAL", message, hint)


def _when(message: Any, field: str) -> str:
    return stamp(getattr(message, field)) if message.HasField(field) else ""


def fire_json(fire: pb.Fire) -> dict[str, Any]:
    return {
        "scheduled_at": _when(fire, "scheduled_at"),
        "due_at": _when(fire, "due_at"),
        "recorded_at": _when(fire, "recorded_at"),
        "outcome": _OUTCOME.get(fire.outcome, "unknown"),
        "job_id": fire.job_id,
        "job_status": fire.job_status,
        "reason": fire.reason,
        "manual": fire.manual,
    }


def _spec_what(spec: Any) -> dict[str, Any]:
    """What a job spec runs, as the UI shows it (never its stdin, only the size)."""
    function = spec.tags.get(FUNCTION_TAG, "")
    return {
        "kind": "function" if function or spec.serializer else "shell",
        "function": function,
        "cmd": spec.cmd,
        "image": spec.image,
        "env": dict(sorted(spec.env.items())),
        "stdin_bytes": len(spec.stdin),
        "max_runtime": ns(spec.max_runtime),
        "cpus": spec.resources.cpus,
        "memory_bytes": spec.resources.memory_bytes,
    }


def schedule_json(schedule: pb.Schedule) -> dict[str, Any]:
    spec = schedule.spec
    target_kind = spec.WhichOneof("target")
    if target_kind == "saved_job":
        target: dict[str, Any] = {"saved_job": spec.saved_job, "version": spec.saved_job_version}
    elif target_kind == "job":
        target = {"job": _spec_what(spec.job), "name": spec.job.name}
    else:
        target = {}
    return {
        "id": schedule.id,
        "name": spec.name,
        "cron": spec.cron,
        "timezone": spec.timezone or "UTC",
        "description": spec.description,
        "target": target,
        "paused": schedule.paused,
        "overlap": _OVERLAP.get(spec.overlap, "skip"),
        "catchup": _CATCHUP.get(spec.catchup, "run_once"),
        "jitter": ns(spec.jitter),
        "created_at": _when(schedule, "created_at"),
        "updated_at": _when(schedule, "updated_at"),
        "next_fire_at": _when(schedule, "next_fire_at"),
        "next_due_at": _when(schedule, "next_due_at"),
        "last_fire": fire_json(schedule.last_fire) if schedule.HasField("last_fire") else None,
    }


def saved_job_json(saved: pb.SavedJob) -> dict[str, Any]:
    return {
        "name": saved.name,
        "version": saved.version,
        "description": saved.description,
        "created_at": _when(saved, "created_at"),
        **_spec_what(saved.spec),
    }


def _name(values: dict[str, list[str]]) -> str:
    name = values.get("name", [""])[0]
    if not name.strip():
        raise _qinval("Name a schedule or saved job in name")
    if len(name) > MAX_NAME:
        raise _qinval(f"name is longer than {MAX_NAME} characters")
    return name


def _uint(values: dict[str, list[str]], key: str, default: int = 0, *, most: int = 1 << 32) -> int:
    raw = values.get(key, [""])[0].strip()
    if not raw:
        return default
    try:
        value = parse_uint(raw)
    except GoError as exc:
        raise _qinval(f"Unable to parse {key} [{raw}]: {exc}") from None
    if value > most:
        raise _qinval(f"{key} is at most {most}")
    return value


def _lines(raw: str) -> list[str]:
    return [line.rstrip("\r") for line in raw.split("\n") if line.strip()]


def run_request(values: dict[str, list[str]]) -> pb.RunSavedJobRequest:
    """The Run of `POST /ui/api/saved-job/run`: only what the form filled is overridden."""
    overrides = pb.RunOverrides()
    args = _lines(values.get("args", [""])[0])
    if len(args) > MAX_ARGS:
        raise _qinval(f"At most {MAX_ARGS} arguments")
    overrides.args.extend(args)
    env = _lines(values.get("env", [""])[0])
    if len(env) > MAX_ENV:
        raise _qinval(f"At most {MAX_ENV} environment variables")
    for line in env:
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise _qinval(f"Environment line [{line[:80]}] is not KEY=VALUE")
        overrides.env[key.strip()] = value
    overrides.image = values.get("image", [""])[0].strip()
    seconds = _uint(values, "max_runtime", most=366 * 86400)
    if seconds:
        overrides.max_runtime.seconds = seconds
    return pb.RunSavedJobRequest(name=_name(values), version=_uint(values, "version"), overrides=overrides)


class ScheduleApi:
    """The handlers; `gateway` supplies the credentials and the gRPC calls."""

    def __init__(self, gateway: Services) -> None:
        self._gateway = gateway

    async def _verified(self, caller: Caller, error: ApiError) -> ApiError:
        """`error` once the credentials are known good (bad credentials beat bad input)."""
        await self._gateway.call_service("schedules", "List", pb.ListSchedulesRequest(), caller)
        return error

    async def _form(self, request: Request, caller: Caller) -> dict[str, list[str]]:
        return await read_form(request, MAX_FORM_BYTES, lambda error: self._verified(caller, error))

    @staticmethod
    def _get_only(request: Request) -> None:
        if request.method != "GET":
            raise multyvac.minval("GET")

    async def schedules(self, request: Request) -> Reply:
        self._get_only(request)
        caller = self._gateway.caller(request)
        answer = await self._gateway.call_service("schedules", "List", pb.ListSchedulesRequest(), caller)
        listed = sorted(answer.schedules, key=lambda s: s.spec.name)
        return multyvac.json_reply({"schedules": [schedule_json(s) for s in listed]})

    async def history(self, request: Request) -> Reply:
        self._get_only(request)
        caller = self._gateway.caller(request)
        values, _error = parse_query(request.scope["query_string"])
        try:
            name = _name(values)
            limit = _uint(values, "limit", DEFAULT_HISTORY, most=MAX_HISTORY) or DEFAULT_HISTORY
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        ask = pb.ScheduleHistoryRequest(name=name, limit=limit)
        answer = await self._gateway.call_service("schedules", "History", ask, caller)
        return multyvac.json_reply({"fires": [fire_json(f) for f in answer.fires]})

    async def _schedule_action(self, request: Request, method: str, message: Any) -> Reply:
        caller = self._gateway.caller(request)
        try:
            name = _name(await self._form(request, caller))
        except ApiError as exc:
            raise await self._verified(caller, exc) if exc.status == 400 else exc from None
        answer = await self._gateway.call_service("schedules", method, message(name=name), caller)
        return multyvac.json_reply(fire_json(answer) if method == "Trigger" else schedule_json(answer))

    async def pause(self, request: Request) -> Reply:
        return await self._schedule_action(request, "Pause", pb.PauseScheduleRequest)

    async def resume(self, request: Request) -> Reply:
        return await self._schedule_action(request, "Resume", pb.ResumeScheduleRequest)

    async def trigger(self, request: Request) -> Reply:
        return await self._schedule_action(request, "Trigger", pb.TriggerScheduleRequest)

    async def saved_jobs(self, request: Request) -> Reply:
        self._get_only(request)
        caller = self._gateway.caller(request)
        answer = await self._gateway.call_service("saved_jobs", "List", pb.ListSavedJobsRequest(), caller)
        listed = sorted(answer.saved_jobs, key=lambda s: s.name)
        return multyvac.json_reply({"saved_jobs": [saved_job_json(s) for s in listed]})

    async def saved_job(self, request: Request) -> Reply:
        """One version (the latest unless `version`) and the latest MAX_VERSIONS versions."""
        self._get_only(request)
        caller = self._gateway.caller(request)
        values, _error = parse_query(request.scope["query_string"])
        try:
            name = _name(values)
            version = _uint(values, "version")
        except ApiError as exc:
            raise await self._verified(caller, exc) from None

        async def get(number: int) -> pb.SavedJob:
            ask = pb.GetSavedJobRequest(name=name, version=number)
            found: pb.SavedJob = await self._gateway.call_service("saved_jobs", "Get", ask, caller)
            return found

        async def get_kept(number: int) -> pb.SavedJob | None:
            try:
                return await get(number)
            except ApiError as exc:
                if exc.status == 404:  # a version no longer kept
                    return None
                raise

        latest = await get(0)
        chosen = latest if version in (0, latest.version) else await get(version)
        older = range(latest.version - 1, max(0, latest.version - MAX_VERSIONS), -1)
        found = await asyncio.gather(*(get_kept(n) for n in older))
        versions = [latest, *(v for v in found if v is not None)]
        return multyvac.json_reply(
            {
                "saved_job": saved_job_json(chosen),
                "versions": [saved_job_json(v) for v in versions],
                "more_versions": max(0, latest.version - MAX_VERSIONS),
            }
        )

    async def run(self, request: Request) -> Reply:
        caller = self._gateway.caller(request)
        try:
            ask = run_request(await self._form(request, caller))
        except ApiError as exc:
            raise await self._verified(caller, exc) if exc.status == 400 else exc from None
        answer = await self._gateway.call_service("saved_jobs", "Run", ask, caller)
        return multyvac.json_reply({"jid": answer.job_id, "version": answer.version})


def _stamp_or_empty(message: Any, field: str) -> str:
    return _when(message, field)


class UsageApi:
    """`GET /ui/api/usage?all=1&window=N`: JobService.Usage as JSON (all: the admin only, 403 otherwise)."""

    def __init__(self, gateway: Services) -> None:
        self._gateway = gateway

    async def usage(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        values, _error = parse_query(request.scope["query_string"])
        try:
            window = _uint(values, "window", 60, most=1440)
        except ApiError as exc:
            await self._gateway.call_service("schedules", "List", pb.ListSchedulesRequest(), caller)
            raise exc from None
        ask = jobs_pb.UsageRequest(all_accounts=values.get("all", [""])[0] in ("1", "true"), window_minutes=window)
        answer = await self._gateway.call_service("jobs", "Usage", ask, caller)
        return multyvac.json_reply(
            {
                "window_start": _stamp_or_empty(answer, "window_start"),
                "window_minutes": answer.window_minutes,
                "counts": dict(sorted(answer.counts.items())),
                "done_per_minute": list(answer.done_per_minute),
                "failed_per_minute": list(answer.failed_per_minute),
                "runtime": ns(answer.runtime),
                "accounts": [
                    {
                        "account": row.account,
                        "counts": dict(sorted(row.counts.items())),
                        "done": row.done,
                        "failed": row.failed,
                        "runtime": ns(row.runtime),
                    }
                    for row in answer.accounts
                ],
                "quotas": {
                    "max_queued_per_account": answer.max_queued_per_account,
                    "max_running_per_account": answer.max_running_per_account,
                },
            }
        )
