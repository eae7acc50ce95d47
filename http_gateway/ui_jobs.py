"""The web UI's job JSON and list filters: summaries (never output), what a job is
called, and the filters the gRPC `List` cannot apply itself.

A summary is built from a `JOB_VIEW_SUMMARY` job: no stdout, stderr, result or stdin,
so a page of fifty stays a few kilobytes whatever the jobs printed. Status and creation
time are filtered by the server; "name contains" and "image contains" by the gateway,
scanning summaries newest first (see `ListPlan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudpipe_proto.v1 import jobs_pb2 as pb
from http_gateway.golang import GoError, parse_query, parse_uint
from http_gateway.job_json import ns, stamp
from http_gateway.multyvac import STATUS_NAMES, STATUS_VALUES, ApiError

DEFAULT_PAGE = 50
MAX_PAGE = 200
SCAN_BATCH = 500  # summaries per List while filtering by name or image
MAX_SCAN = 10_000  # summaries read for one page at most; beyond, the page ends early with a cursor
FUNCTION_TAG = "function"  # set by the SDK on function jobs (cloudpipe_sdk/_options.py)


def job_label(job: pb.Job) -> str:
    """What people call the job: its name, else the function it calls, else ""."""
    function = job.spec.tags.get(FUNCTION_TAG, "")
    return job.spec.name or (f"{function}()" if function else "")


def summary(job: pb.Job) -> dict[str, Any]:
    """One job for the list and the live stream: no output, result or stdin."""
    spec = job.spec
    out: dict[str, Any] = {
        "jid": job.id,
        "name": spec.name,
        "function": spec.tags.get(FUNCTION_TAG, ""),
        "label": job_label(job),
        "cmd": spec.cmd,
        # The server names the image a job without one ran in (Job.image).
        "image": job.image or spec.image,
        "status": STATUS_NAMES.get(job.status, "error"),
        "created_at": stamp(job.created_at),
        "runtime": ns(job.runtime),
        "queue_delay": ns(job.queue_delay),
        "overhead_delay": ns(job.overhead_delay),
        "return_code": job.return_code if job.HasField("return_code") else "",
        "attempts": job.attempts,
        "reason": job.reason,
        "kill_requested": job.kill_requested,
        "restartable": spec.restartable,
        "interactive": spec.interactive,
        "schedule_id": spec.schedule_id,
        "saved_job": spec.saved_job,
    }
    if job.HasField("started_at"):
        out["started_at"] = stamp(job.started_at)
    if job.HasField("finished_at"):
        out["finished_at"] = stamp(job.finished_at)
    return out


@dataclass(frozen=True)
class ListPlan:
    """A page of `GET /ui/api/jobs`: the server-side part as a `ListJobsRequest`, the
    substring filters the gateway applies, and how many jobs to answer."""

    request: pb.ListJobsRequest
    name: str
    image: str
    limit: int

    def matches(self, job: pb.Job) -> bool:
        if self.name and self.name not in f"{job.spec.name}\n{job.spec.tags.get(FUNCTION_TAG, '')}".lower():
            return False
        return not self.image or self.image in (job.image or job.spec.image).lower()

    @property
    def filters_here(self) -> bool:
        return bool(self.name or self.image)


def _qinval(message: str) -> ApiError:
    return ApiError(400, "QINVAL", message, "See docs/ui.md for the UI's query parameters.")


def _uint(values: Mapping[str, Sequence[str]], key: str, default: int) -> int:
    raw = values.get(key, [""])[0]
    if not raw:
        return default
    try:
        return parse_uint(raw)
    except GoError as exc:
        raise _qinval(f"Unable to parse {key} [{raw}]: {exc}") from None


def _time(values: Mapping[str, Sequence[str]], key: str) -> datetime | None:
    raw = values.get(key, [""])[0]
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _qinval(f"Unable to parse {key} [{raw}]: use an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_list_plan(raw_query: bytes) -> ListPlan:
    """`status` (repeated or comma-separated), `name`, `image` (contains, any case),
    `since`/`until` (ISO times of creation), `before` (a jid cursor), `limit`."""
    values, _error = parse_query(raw_query)
    statuses: list[int] = []
    for raw in values.get("status", []):
        for name in filter(None, raw.split(",")):
            if name not in STATUS_VALUES:
                raise _qinval(f"Unknown status [{name}]")
            statuses.append(STATUS_VALUES[name])
    limit = min(_uint(values, "limit", DEFAULT_PAGE) or DEFAULT_PAGE, MAX_PAGE)
    request = pb.ListJobsRequest(
        statuses=statuses,  # type: ignore[arg-type]
        before_id=_uint(values, "before", 0),
        newest_first=True,
        view=pb.JOB_VIEW_SUMMARY,
    )
    for field, key in (("created_after", "since"), ("created_before", "until")):
        moment = _time(values, key)
        if moment is not None:
            getattr(request, field).FromDatetime(moment)
    name = values.get("name", [""])[0].strip().lower()
    image = values.get("image", [""])[0].strip().lower()
    return ListPlan(request, name, image, limit)


def parse_ids(raw: str, key: str) -> list[int]:
    """`1,2,3` as ids; an empty string is none."""
    ids = []
    for part in filter(None, raw.split(",")):
        try:
            ids.append(parse_uint(part))
        except GoError as exc:
            raise _qinval(f"Unable to parse {key} [{part}]: {exc}") from None
    return ids
