"""The multyvac 0.5.0 wire contract of the original Go server (spec sections 2 and 3).

What a client sends and every error it can get: Basic credentials, the error envelope
and every error code/message/hint/retry, the submit payload (Go JSON decoding, then the
JCMD -> JRSRC -> JRTYPE checks), the list query and its QINVAL variants, the kill form
and its JFRM variants, and the mapping of gRPC failures onto the original codes. The
job JSON is in `job_json.py`; `app.py` only routes; `golang.py` supplies the Go
parsers whose error texts the original messages embed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from cloudpipe_common.limits import MAX_JOBS_PER_SUBMIT
from cloudpipe_proto.v1 import jobs_pb2 as pb
from http_gateway.golang import (
    GoError,
    GoObject,
    as_bool,
    as_int,
    as_names,
    as_string,
    as_string_map,
    basic_auth,
    decode_base64,
    decode_json,
    go_json,
    parse_int,
    parse_media_type,
    parse_query,
    parse_uint,
    struct_fields,
    type_error,
)

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
OK_BODY = b'{"status":"ok"}'
DEFAULT_LIMIT, MAX_LIMIT = 1000, 9999
MAX_JID = (1 << 63) - 1  # the store's ids are signed 64-bit: larger JIDs cannot exist
STATUS_NAMES = {value: name.removeprefix("JOB_STATUS_").lower() for name, value in pb.JobStatus.items()}
STATUS_VALUES = {name: value for value, name in STATUS_NAMES.items() if value}
RESULT_TYPES = {"binary": pb.RESULT_TYPE_BINARY, "pickle": pb.RESULT_TYPE_PICKLE}
_AFAIL_HINT = "Double-check the account name and API key you're providing to multyvac.config.set_key()."
_STORAGE_HINT = "This is probably a storage error on our end."
_MAYBE_ENQUEUED = (
    "The server did not confirm the submission; it may have enqueued the jobs: look before submitting again."
)


@dataclass(frozen=True)
class Reply:
    """A finished HTTP answer: status, exact Content-Type, body (and a redirect's target)."""

    status: int
    content_type: str
    body: bytes
    location: str = ""
    disposition: str = ""  # Content-Disposition (the UI's downloads)


class ApiError(Exception):
    """An error in the Go server's envelope; `reply()` renders it."""

    def __init__(self, status: int, code: str, message: str, hint: str = "", retry: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.hint, self.retry = status, code, message, hint, retry

    def reply(self) -> Reply:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            error["hint"] = self.hint
        if self.retry:
            error["retry"] = True
        return Reply(self.status, JSON, go_json({"error": error}))


def json_reply(value: object) -> Reply:
    """A success body as `json.NewEncoder(w).Encode` writes it: trailing newline."""
    return Reply(200, JSON, go_json(value, newline=True))


# -- errors (spec 2.2) --------------------------------------------------------------------


def anone() -> ApiError:
    hint = (
        "Try using multyvac.config.set_key(api_key='username', api_secret_key='API key', api_url='') "
        "before calling other multyvac methods."
    )
    return ApiError(401, "ANONE", "You must authenticate.", hint)


def afail(account: str) -> ApiError:
    return ApiError(401, "AFAIL", f"Unable to authenticate account [{account}]", _AFAIL_HINT)


def minval(methods: str = "GET or POST") -> ApiError:
    return ApiError(405, "MINVAL", "Method not supported", f"Use {methods} against this endpoint.")


def body_too_large(limit: int, kill: bool = False) -> ApiError:
    what = "Unable to parse Job: Kill payload as a POST body" if kill else "Unable to parse job payload as JSON"
    hint = f"Send at most {limit} bytes per request; submit large batches in several requests."
    return ApiError(413, "JFRM" if kill else "JPRS", f"{what}: http: request body too large", hint)


def wtf(detail: str) -> ApiError:
    return ApiError(500, "WTF", f"Internal gateway error: {detail}", "This is a bug in the Cloudpipe gateway.")


def rpc_failure(op: str, error: grpc.aio.AioRpcError, account: str, jid: int = 0) -> ApiError:
    """The original error for a failed gRPC call of `op` (submit, list, get, stats,
    kill, kill_all, probe, submit_check); "the server decides" about credentials, the gateway only translates."""
    code = error.code()
    detail = error.details() or code.name
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return afail(account)
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return ApiError(403, "AFAIL", f"Account [{account}] may not do this: {detail}", _AFAIL_HINT)
    # The server marks calls its authentication refused (cloudpipe_server.rpc.interceptor):
    # an auth-service outage is ACONN (500, retry), whatever the operation (spec 2.2, 2.3).
    auth = dict(error.trailing_metadata() or ()).get("x-cloudpipe-auth")
    if auth == "unavailable":
        return aconn(detail)
    if auth == "throttled":
        return ApiError(429, "AFAIL", f"Unable to authenticate account [{account}]: {detail}", _AFAIL_HINT)
    if op == "submit_check":  # the credential check before a submit: nothing was enqueued
        return ApiError(503, "JQUEUE", "Unable to enqueue your job.", retry=True)
    rejected = code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    if op == "submit" and rejected:
        hint = "The server rejected the job; nothing was enqueued."
        return ApiError(400, "JPRS", f"Unable to accept job payload: {detail}", hint)
    if op == "kill" and code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
        return jnf(jid)
    if op == "get" and code is grpc.StatusCode.NOT_FOUND:
        return jnf(jid)
    if op == "submit":
        if code is grpc.StatusCode.UNAVAILABLE:  # refused before anything was done: a retry is safe
            return ApiError(503, "JQUEUE", "Unable to enqueue your job.", retry=True)
        # Past a deadline, or failed midway: the jobs may be stored all the same, and
        # multyvac's retry is a new request that would enqueue them a second time.
        return ApiError(503, "JQUEUE", "Unable to enqueue your job.", _MAYBE_ENQUEUED)
    if op in ("list", "get") and code is grpc.StatusCode.RESOURCE_EXHAUSTED:  # the answer is over gRPC's size cap
        hint = "Ask for fewer jobs at once (limit, jid, before, after); retrying the same request cannot help."
        return ApiError(500, "JLIST", f"Unable to list jobs: the answer is too large ({detail})", hint)
    if op in ("list", "get", "stats"):
        return ApiError(503, "JLIST", f"Unable to list jobs: {detail}", "This is most likely a database problem.", True)
    if op == "kill":
        return ApiError(500, "JLIST", "Unable to list jobs.", _STORAGE_HINT, True)
    if op == "kill_all":
        return ApiError(500, "JUPD", f"Unable to request a job kill: {detail}", _STORAGE_HINT, True)
    return aconn(detail)


def aconn(detail: str) -> ApiError:
    hint = "This is most likely an internal networking problem on our end."
    return ApiError(500, "ACONN", f"Unable to connect to authentication service: {detail}", hint, True)


def jnf(jid: int) -> ApiError:
    return ApiError(404, "JNF", f"Unable to find a job with ID [{jid}].", "Make sure that the JID is still valid.")


# -- credentials (spec 2.3 step 1) ------------------------------------------------------


def basic_credentials(header: str | None) -> tuple[str, str]:
    """(account, key) from `Authorization: Basic base64(account:key)`, like Go 1.4's
    `r.BasicAuth()`: exact `Basic ` prefix, split at the first colon; else ANONE."""
    credentials = basic_auth(header)
    if credentials is None:
        raise anone()
    return credentials


def grpc_metadata(account: str, key: str) -> tuple[tuple[str, str], ...] | None:
    """The server's credential metadata, or None when no such credential can be valid
    (an empty account name, or characters gRPC metadata cannot carry)."""
    if not account or not all(" " <= c <= "~" for c in account + key):
        return None
    return (("authorization", f"Bearer {key}"), ("x-cloudpipe-account", account))


# -- POST /v1/job (spec 2.4.2, 3.1, 3.6) ---------------------------------------------

_JOB_FIELDS = frozenset(
    {"cmd", "name", "core", "multicore", "restartable", "tags", "layer", "vol", "env", "result_source"}
    | {"result_type", "max_runtime", "stdin", "profile", "depends_on"}
)
_MAX_MINUTES = 5_000_000_000  # within protobuf's Duration range


def jprs(detail: object) -> ApiError:
    hint = "Please supply valid JSON in your request."
    return ApiError(400, "JPRS", f"Unable to parse job payload as JSON: {detail}", hint)


def _depends_on(value: object) -> list[int]:
    """Go kept a free string here; the server needs JIDs: accept a JID or a list of them."""
    items = value if isinstance(value, list) and not isinstance(value, GoObject) else [value]
    try:
        return [parse_uint(str(item) if type(item) in (int, str) else "") for item in items]
    except GoError:
        raise jprs(f"depends_on must be a JID or a list of JIDs, got {json.dumps(value)}") from None


def _spec(obj: GoObject | None, default_image: str) -> tuple[pb.JobSpec, str]:
    """The job and its raw `result_type` (checked later, in Go's validation order)."""
    f = struct_fields(obj or GoObject(), _JOB_FIELDS)
    layers = as_names(f["layer"], "main.Layer") if "layer" in f else []
    spec = pb.JobSpec(
        cmd=as_string(f.get("cmd", "")),
        name=as_string(f.get("name", "")),
        image=(layers[0] if layers else "") or default_image,
        core=as_string(f.get("core", "")),
        multicore=as_int(f.get("multicore", 0), bits=32),
        restartable=as_bool(f.get("restartable", False)),
        tags=as_string_map(f.get("tags", GoObject())),
        volumes=as_names(f["vol"], "main.Volume") if "vol" in f else [],
        env=as_string_map(f.get("env", GoObject())),
        result_source=as_string(f.get("result_source", "")),
        profile=as_bool(f.get("profile", False)),
    )
    result_type = as_string(f.get("result_type", ""))
    spec.result_type = RESULT_TYPES.get(result_type, pb.RESULT_TYPE_UNSPECIFIED)
    minutes = as_int(f.get("max_runtime", 0))
    if minutes > 0:  # multyvac documents minutes; zero or less leaves the server's default
        spec.max_runtime.seconds = min(minutes, _MAX_MINUTES) * 60
    if "stdin" in f:
        spec.stdin = decode_base64(as_string(f["stdin"], "[]uint8"))
    if "depends_on" in f:
        spec.depends_on.extend(_depends_on(f["depends_on"]))
    return spec, result_type


def parse_submission(body: bytes, default_image: str) -> list[pb.JobSpec]:
    """The jobs of a submit body, every one checked before any is sent (the submit is
    atomic): JPRS for JSON or type errors anywhere, then per job in order JCMD, JRSRC, JRTYPE."""
    try:
        payload = decode_json(body)
        if payload is None:
            return []
        if not isinstance(payload, GoObject):
            raise type_error(payload, "main.JobSubmission")
        jobs = struct_fields(payload, ("jobs",)).get("jobs", [])
        if not isinstance(jobs, list) or isinstance(jobs, GoObject):
            raise type_error(jobs, "[]main.Job")
        if len(jobs) > MAX_JOBS_PER_SUBMIT:  # before any job is parsed
            hint = "Submit large batches in several requests."
            raise ApiError(413, "JPRS", f"Too many jobs: at most {MAX_JOBS_PER_SUBMIT} jobs per submit", hint)
        if any(job is not None and not isinstance(job, GoObject) for job in jobs):
            raise type_error(next(j for j in jobs if j is not None and not isinstance(j, GoObject)), "main.Job")
        parsed = [_spec(job, default_image) for job in jobs]
    except GoError as exc:
        raise jprs(exc) from None
    for spec, result_type in parsed:
        if spec.cmd == "":
            hint = 'Specify a command to execute as a "cmd" element in your job.'
            raise ApiError(400, "JCMD", "All jobs must specify a command to execute.", hint)
        if spec.result_source != "stdout" and not spec.result_source.startswith("file:"):
            hint = 'The "result_source" must be either "stdout" or "file:{path}".'
            raise ApiError(400, "JRSRC", f"Invalid result source [{spec.result_source}]", hint)
        if result_type not in RESULT_TYPES:
            hint = 'The "result_type" must be one of the following: binary, pickle'
            raise ApiError(400, "JRTYPE", f"Invalid result type [{result_type}]", hint)
    return [spec for spec, _ in parsed]


# -- GET /v1/job (spec 2.4.3) ------------------------------------------------------------


@dataclass(frozen=True)
class ListPlan:
    """What to ask the server; `empty` means "no job can match": answer `[]` once the
    credentials are known good (Go's early returns, still after authentication)."""

    request: pb.ListJobsRequest
    empty: bool = False


def _qinval(message: str, hint: str) -> ApiError:
    return ApiError(400, "QINVAL", message, hint)


def _bound(values: Mapping[str, list[str]], key: str, label: str, hint: str) -> int:
    text = values.get(key, [""])[0]
    try:
        return parse_uint(text) if text else 0
    except GoError as exc:
        raise _qinval(f"Unable to parse {label} bound [{text}]: {exc}", hint) from None


def parse_list_query(raw: bytes) -> ListPlan:
    """Filters of `GET /v1/job?...`: repeated jid/name/status, limit (default 1000,
    clamped to 9999, QINVAL below 1), before (jid < N) and after (jid >= N), both applied."""
    values, error = parse_query(raw)
    if error is not None:
        hint = "You broke Go's URL parsing somehow! Make URLs that suck less."
        raise _qinval(f"Unable to parse query parameters: {error}", hint)
    jids = []
    for text in values.get("jid", []):
        try:
            jids.append(parse_uint(text))
        except GoError as exc:
            raise _qinval(f"Unable to parse JID [{text}]: {exc}", "Please only use valid JIDs.") from None
    limit = DEFAULT_LIMIT
    text = values.get("limit", [""])[0]
    if text:
        try:
            limit = parse_int(text)
        except GoError as exc:
            raise _qinval(f"Unable to parse limit [{text}]: {exc}", "Please specify a valid integral limit.") from None
        if limit < 1:
            raise _qinval(
                f"Invalid negative or zero limit [{limit}]", "Please specify a valid, positive integral limit."
            )
    before = _bound(values, "before", "Before", "Please specify a valid integral JID as the lower bound.")
    after = _bound(values, "after", "After", "Please specify a valid integral JID as the upper bound.")
    names = [name for name in values.get("name", []) if name]
    statuses = [STATUS_VALUES[s] for s in values.get("status", []) if s in STATUS_VALUES]
    request = pb.ListJobsRequest(
        ids=[jid for jid in jids if jid <= MAX_JID],
        names=names,
        statuses=statuses,  # type: ignore[arg-type]
        after_id=after,
        before_id=before if before <= MAX_JID else 0,
        limit=min(limit, MAX_LIMIT),
    )
    empty = (
        (bool(jids) and not request.ids)
        or (bool(values.get("name")) and not names)
        or (bool(values.get("status")) and not statuses)
        or after > MAX_JID
    )
    return ListPlan(request, empty)


# -- /v1/job/kill (spec 2.4.4) -------------------------------------------------------------


def parse_kill_form(method: str, content_type: str | None, body: bytes, raw_query: bytes) -> tuple[int, bool]:
    """(jid, sudo) from a kill request, like Go 1.4's `r.ParseForm()` then
    `r.PostFormValue`: only a POST/PUT/PATCH url-encoded body counts; the first jid wins."""
    form: dict[str, list[str]] = {}
    error: GoError | None = None
    if method in ("POST", "PUT", "PATCH"):
        try:
            if parse_media_type(content_type or "application/octet-stream") == "application/x-www-form-urlencoded":
                form, error = parse_query(body)
        except GoError as exc:
            error = exc
    error = error or parse_query(raw_query)[1]
    if error is not None:
        hint = "Please use valid form encoding in your request."
        raise ApiError(400, "JFRM", f"Unable to parse Job: Kill payload as a POST body: {error}", hint)
    try:
        jid = parse_uint(form.get("jid", [""])[0])
    except GoError as exc:
        hint = "Please provide a valid integer job ID to Job: Kill."
        raise ApiError(400, "JFRM", f"Unable to parse Job: Kill payload as a valid JID: {exc}", hint) from None
    return jid, form.get("sudo", [""])[0] == "true"
