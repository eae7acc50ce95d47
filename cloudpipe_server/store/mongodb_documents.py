"""How jobs are stored as MongoDB documents: one per job in `jobs`, `_id` being the job
id (see the `mongodb` module docstring). Fields added since the first version may be
absent from stored documents, so they are read with a default."""

from __future__ import annotations

from datetime import datetime

from bson import Binary

from cloudpipe_server.models import Job, JobSpec, JobStatus
from cloudpipe_server.store.codec import collected_from_doc, from_ns, spec_from_doc, spec_to_doc, to_ns
from cloudpipe_server.store.mongodb_db import Doc

NOT_STARTED: Doc = {
    **dict.fromkeys(["started_at", "container_started_at", "finished_at", "return_code", "collected"]),
    **{"reason": "", "kill_requested": False, "attempts": 0, "container_id": "", "lease_owner": ""},
    **{"lease_expires_at": None, "stdout": Binary(b""), "stderr": Binary(b""), "result": Binary(b"")},
    "run_after": None,
}


def new_doc(job_id: int, account: str, spec: JobSpec, now: datetime) -> Doc:
    doc = spec_to_doc(spec)
    doc["env"], doc["tags"] = [list(item) for item in spec.env.items()], [list(item) for item in spec.tags.items()]
    status = JobStatus.WAITING.value if spec.depends_on else JobStatus.QUEUED.value
    return {
        **NOT_STARTED,
        **{"_id": job_id, "account": account, "name": spec.name, "status": status, "spec": doc},
        **{"stdin": Binary(spec.stdin), "depends_on": list(spec.depends_on), "created_at": to_ns(now)},
        "idempotency_key": spec.idempotency_key,
    }


def doc_to_job(doc: Doc) -> Job:
    spec = {**doc["spec"], "env": dict(doc["spec"].get("env", [])), "tags": dict(doc["spec"].get("tags", []))}
    created_at = from_ns(doc["created_at"])
    assert created_at is not None
    plain: Doc = {name: doc[name] for name in _PLAIN_FIELDS}
    times: Doc = {name: from_ns(doc[name]) for name in _TIME_FIELDS}
    blobs: Doc = {name: bytes(doc[name]) for name in ("stdout", "stderr", "result")}
    return Job(
        id=doc["_id"],
        spec=spec_from_doc(spec, bytes(doc["stdin"])),
        status=JobStatus(doc["status"]),
        created_at=created_at,
        collected=collected_from_doc(doc["collected"]),
        run_after=from_ns(doc.get("run_after")),  # absent from documents of older versions
        **plain,
        **times,
        **blobs,
    )


_PLAIN_FIELDS = ("account", "return_code", "reason", "kill_requested", "attempts", "container_id", "lease_owner")
_TIME_FIELDS = ("started_at", "container_started_at", "finished_at", "lease_expires_at")
