"""The web UI's JSON routes under `/ui/api/` (besides the live feeds of ui_live.py).

    GET  /ui/api/jobs?status=&name=&image=&since=&until=&before=&limit=
         a page of summaries, newest first: {"jobs": [...], "next_before": jid or 0}
    GET  /ui/api/job?jid=N&view=summary      one job's summary, details and attempts, no output
    GET  /ui/api/job/output?jid=N&part=stdout|stderr|result   the bytes, as a download
    POST /ui/api/job/rerun   jid=N           submit the job's spec again: {"jid": new}
    POST /ui/api/jobs/kill   jids=1,2,3      kill each: {"killed": [...], "failed": {...}}

Credentials are the Basic ones of `/v1/`; errors use the Go envelope.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from cloudpipe_proto.v1 import jobs_pb2 as pb
from http_gateway import multyvac
from http_gateway.caller import Caller
from http_gateway.golang import parse_query
from http_gateway.job_json import ns, stamp
from http_gateway.multyvac import STATUS_NAMES, ApiError, Reply
from http_gateway.ui import parse_jid
from http_gateway.ui_jobs import MAX_SCAN, SCAN_BATCH, parse_ids, parse_list_plan, summary
from http_gateway.ui_live import Calls

MAX_BULK_KILL = 1000
_PARTS = ("stdout", "stderr", "result")


def _detail(job: pb.Job) -> dict[str, Any]:
    """A summary plus what the job page shows beside it (never output or stdin)."""
    spec = job.spec
    out = summary(job)
    out.update(
        env=dict(sorted(spec.env.items())),
        tags=dict(sorted(spec.tags.items())),
        result_source=spec.result_source or "stdout",
        result_type="pickle" if spec.result_type == pb.RESULT_TYPE_PICKLE else "binary",
        max_runtime=ns(spec.max_runtime),
        depends_on=list(spec.depends_on),
        collected={
            "cputime_user_ns": job.collected.cputime_user_ns,
            "cputime_system_ns": job.collected.cputime_system_ns,
            "memory_max_usage_bytes": job.collected.memory_max_usage_bytes,
            "oom_killed": job.collected.oom_killed,
        },
        attempt_history=[_attempt(attempt) for attempt in job.attempt_history],
    )
    return out


def _attempt(attempt: pb.Attempt) -> dict[str, Any]:
    """One ended attempt of the job page's "Attempts" table."""
    out: dict[str, Any] = {
        "number": attempt.number,
        "status": STATUS_NAMES.get(attempt.status, "error"),
        "return_code": attempt.return_code if attempt.HasField("return_code") else "",
        "reason": attempt.reason,
        "owner": attempt.owner,
    }
    for field in ("started_at", "ended_at"):
        if attempt.HasField(field):
            out[field] = stamp(getattr(attempt, field))
    return out


class UiApi:
    """The handlers; `gateway` supplies the gRPC calls and the credentials check."""

    def __init__(self, gateway: Calls) -> None:
        self._gateway = gateway

    async def _verified(self, caller: Caller, error: ApiError) -> ApiError:
        await self._gateway.call("probe", "List", pb.ListJobsRequest(ids=[multyvac.MAX_JID], limit=1), caller)
        return error

    async def jobs(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        try:
            plan = parse_list_plan(request.scope["query_string"])
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        found: list[pb.Job] = []
        listing = pb.ListJobsRequest()
        listing.CopyFrom(plan.request)
        batch = SCAN_BATCH if plan.filters_here else plan.limit + 1
        scanned = 0
        next_before = 0
        while True:
            listing.limit = batch
            response = await self._gateway.call("list", "List", listing, caller)
            jobs = list(response.jobs)
            scanned += len(jobs)
            found.extend(job for job in jobs if plan.matches(job))
            if len(found) > plan.limit:
                next_before = found[plan.limit - 1].id
                found = found[: plan.limit]
                break
            if len(jobs) < batch:
                break  # the end of the list
            listing.before_id = jobs[-1].id
            if scanned >= MAX_SCAN:
                next_before = jobs[-1].id  # go on from here next time
                break
        return multyvac.json_reply(
            {"jobs": [summary(job) for job in found], "next_before": next_before, "scanned": scanned}
        )

    async def job(self, request: Request) -> Reply:
        """`view=summary` only (the full answer is app.Gateway.ui_job)."""
        caller = self._gateway.caller(request)
        try:
            jid = parse_jid(request.scope["query_string"])
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        get = pb.GetJobRequest(id=jid, view=pb.JOB_VIEW_SUMMARY)  # no output, with the attempts
        job: pb.Job = await self._gateway.call("get", "Get", get, caller, jid)
        return multyvac.json_reply(_detail(job))

    async def output(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        try:
            jid = parse_jid(request.scope["query_string"])
            values, _error = parse_query(request.scope["query_string"])
            part = values.get("part", ["stdout"])[0]
            if part not in _PARTS:
                raise ApiError(400, "QINVAL", f"Unknown part [{part}]", "Use stdout, stderr or result.")
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        job = await self._gateway.call("get", "Get", pb.GetJobRequest(id=jid), caller, jid)
        data: bytes = getattr(job, part)
        name = f"job-{jid}.{part}" + (".pickle" if part == "result" and job.spec.result_type == 2 else "")
        return Reply(200, "application/octet-stream", data, disposition=f'attachment; filename="{name}"')

    async def _form(self, request: Request) -> dict[str, list[str]]:
        body = await request.body()
        values, _error = parse_query(body if len(body) < 1 << 20 else b"")
        return values

    async def rerun(self, request: Request) -> Reply:
        if request.method != "POST":
            raise multyvac.minval("POST")
        caller = self._gateway.caller(request)
        try:
            jid = parse_jid(b"jid=" + (await self._form(request)).get("jid", [""])[0].encode())
        except ApiError as exc:
            raise await self._verified(caller, exc) from None
        job = await self._gateway.call("get", "Get", pb.GetJobRequest(id=jid), caller, jid)
        spec = pb.JobSpec()
        spec.CopyFrom(job.spec)
        # A new run of its own: not a retry of the same submission, not a run of its schedule.
        for field in ("idempotency_key", "schedule_id"):
            spec.ClearField(field)
        spec.tags["rerun_of"] = str(jid)
        response = await self._gateway.call("submit", "Submit", pb.SubmitRequest(jobs=[spec]), caller)
        return multyvac.json_reply({"jid": response.ids[0]})

    async def kill_many(self, request: Request) -> Reply:
        if request.method != "POST":
            raise multyvac.minval("POST")
        caller = self._gateway.caller(request)
        try:
            jids = parse_ids((await self._form(request)).get("jids", [""])[0], "jids")
            if not 0 < len(jids) <= MAX_BULK_KILL:
                raise ApiError(400, "QINVAL", f"Name 1 to {MAX_BULK_KILL} jobs in jids", "jids=1,2,3")
        except ApiError as exc:
            raise await self._verified(caller, exc) from None

        async def kill(jid: int) -> str:
            try:
                await self._gateway.call("kill", "Kill", pb.KillJobRequest(id=jid), caller, jid)
            except ApiError as exc:
                if exc.status == 401:
                    raise
                return exc.message
            return ""

        outcomes = await asyncio.gather(*(kill(jid) for jid in jids))
        failed = {str(jid): message for jid, message in zip(jids, outcomes, strict=True) if message}
        killed = [jid for jid, message in zip(jids, outcomes, strict=True) if not message]
        return multyvac.json_reply({"killed": killed, "failed": failed})
