"""The job JSON of the Go server (spec 3.2, 3.7) and the other success bodies of the
multyvac routes (spec 2.4.1, 2.4.5): field order, `YYYY-MM-DD HH:MM:SS.mmm` UTC
timestamps, nanosecond durations, base64, never-null empties."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from typing import Any

from cloudpipe_proto.v1 import jobs_pb2 as pb
from http_gateway.golang import go_json
from http_gateway.multyvac import STATUS_NAMES, TEXT, Reply, json_reply


def auth_service_reply(address: str, style: str) -> Reply:
    return Reply(200, TEXT, go_json({"address": address, "style": style}, newline=True))


def stats_reply(counts: Mapping[str, int]) -> Reply:
    return json_reply({"stats": dict(sorted(counts.items()))})


def stamp(moment: Any) -> str:
    """`YYYY-MM-DD HH:MM:SS.mmm` in UTC; Go truncates to milliseconds."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment.seconds)) + f".{moment.nanos // 1_000_000:03d}"


def ns(span: Any) -> int:
    return int(span.seconds) * 1_000_000_000 + int(span.nanos)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# multyvac never reads a job's `stdin` back: larger ones are shown as "" so that a few
# big inputs do not make every list answer huge.
MAX_STDIN_ECHO = 64 << 10

_COLLECTED = (
    ("cputime_user", "cputime_user_ns"),
    ("cputime_system", "cputime_system_ns"),
    ("memory_failcnt", "memory_failcnt"),
    ("memory_max_usage", "memory_max_usage_bytes"),
)
_FAILED = frozenset({"error", "killed", "stalled"})


def render_job(job: pb.Job, default_image: str) -> dict[str, Any]:
    """One job as the Go server's SubmittedJob JSON, fields in Go order: empties are
    `{}`/`[]`/`""` (never null), started_at/finished_at absent until set, `jid` last;
    `stdin` is `""` past MAX_STDIN_ECHO bytes."""
    spec = job.spec
    out: dict[str, Any] = {"cmd": spec.cmd}
    if spec.name:
        out["name"] = spec.name
    out["core"] = spec.core
    out["multicore"] = spec.multicore
    out["restartable"] = spec.restartable
    out["tags"] = dict(sorted(spec.tags.items()))
    out["layer"] = [{"name": spec.image}] if spec.image and spec.image != default_image else []
    out["vol"] = [{"name": entry.partition(":")[0]} for entry in spec.volumes]  # the name of a mount
    out["env"] = dict(sorted(spec.env.items()))
    out["result_source"] = spec.result_source
    out["result_type"] = "pickle" if spec.result_type == pb.RESULT_TYPE_PICKLE else "binary"
    out["max_runtime"] = spec.max_runtime.seconds // 60
    out["stdin"] = _b64(spec.stdin) if len(spec.stdin) <= MAX_STDIN_ECHO else ""
    out["profile"] = spec.profile
    if spec.depends_on:
        out["depends_on"] = ",".join(str(jid) for jid in spec.depends_on)
    out["created_at"] = stamp(job.created_at)
    if job.HasField("started_at"):
        out["started_at"] = stamp(job.started_at)
    if job.HasField("finished_at"):
        out["finished_at"] = stamp(job.finished_at)
    status = STATUS_NAMES.get(job.status, "error")
    stderr = job.stderr.decode("utf-8", "replace")
    if not stderr and job.reason and status in _FAILED:
        stderr = f"cloudpipe: {job.reason}\n"  # multyvac shows only stderr in JobError
    out["status"] = status
    out["result"] = _b64(job.result)
    out["return_code"] = job.return_code if job.HasField("return_code") else ""
    out["runtime"] = ns(job.runtime)
    out["queue_delay"] = ns(job.queue_delay)
    out["overhead_delay"] = ns(job.overhead_delay)
    out["stderr"] = stderr
    out["stdout"] = job.stdout.decode("utf-8", "replace")
    out["collected"] = {
        key: getattr(job.collected, field) for key, field in _COLLECTED if getattr(job.collected, field)
    }
    out["jid"] = job.id
    return out


def jobs_reply(jobs: Iterable[pb.Job], default_image: str) -> Reply:
    return json_reply({"jobs": [render_job(job, default_image) for job in jobs]})
