"""How jobs are stored as MongoDB documents: one per job in `jobs`, `_id` being the job
id (see the `mongodb` module docstring), and their indexes (`setup`). Fields added
since the first version may be absent from stored documents, so they are read with a
default."""

from __future__ import annotations

from datetime import datetime

from bson import Binary
from pymongo.database import Database

from cloudpipe_server.models import Job, JobSpec, JobStatus
from cloudpipe_server.store import mongodb_output as output
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


def setup(db: Database[Doc]) -> None:
    """The counter and indexes of the job store (idempotent: runs at every start)."""
    db["counters"].update_one({"_id": "jobs"}, {"$setOnInsert": {"seq": 0}}, upsert=True)
    jobs = db["jobs"]
    jobs.create_index([("status", 1), ("_id", 1)], name="status_id")
    jobs.create_index([("account", 1), ("_id", 1)], name="account_id")
    jobs.create_index([("account", 1), ("name", 1)], name="account_name")
    jobs.create_index([("status", 1), ("lease_expires_at", 1)], name="status_lease")
    jobs.create_index([("depends_on", 1), ("status", 1)], name="depends_on_status")  # the dependents of a job
    # Only when missing: a server ignores an index created again, mongomock re-checks
    # every document against it, ignoring its partial filter.
    if "account_key" not in jobs.index_information():
        keyed = {"idempotency_key": {"$gt": ""}}  # non-empty strings; older documents have no key
        keys = [("account", 1), ("idempotency_key", 1)]
        jobs.create_index(keys, name="account_key", unique=True, partialFilterExpression=keyed)
    output.create_indexes(db)
