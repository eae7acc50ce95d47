"""Schema of the MongoDB backend: how jobs are stored as documents (one per job in
`jobs`, `_id` being the job id; see the `jobs` module docstring) and the collections'
indexes, of the job store (`setup_jobs`: jobs, counters, job_output), of the schedule
store (`setup_schedules`: saved_jobs, schedules, schedule_fires) and of the secret store
(`setup_secrets`: secrets). Fields added since the first version may be absent from
stored documents, so they are read with a default."""

from __future__ import annotations

from datetime import datetime

from bson import Binary
from pymongo.database import Database

from cloudpipe_server.models import Job, JobSpec, JobStatus
from cloudpipe_server.store._shared import job_from_record, spec_to_doc, to_ns
from cloudpipe_server.store.mongodb.database import Doc

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
    record = {**doc, "id": doc["_id"], "run_after": doc.get("run_after")}  # absent from documents of older versions
    return job_from_record(record, spec, doc["collected"])


def setup_jobs(db: Database[Doc]) -> None:
    """The counter and indexes of the job store, its output chunks' included
    (idempotent: runs at every start)."""
    db["counters"].update_one({"_id": "jobs"}, {"$setOnInsert": {"seq": 0}}, upsert=True)
    jobs = db["jobs"]
    jobs.create_index([("status", 1), ("_id", 1)], name="status_id")
    jobs.create_index([("account", 1), ("_id", 1)], name="account_id")
    jobs.create_index([("account", 1), ("name", 1)], name="account_name")
    jobs.create_index([("account", 1), ("status", 1)], name="account_status")  # counts per status
    jobs.create_index([("status", 1), ("lease_expires_at", 1)], name="status_lease")
    jobs.create_index([("depends_on", 1), ("status", 1)], name="depends_on_status")  # the dependents of a job
    jobs.create_index([("finished_at", 1)], name="finished_at")  # retention (retention.py)
    # Only when missing: a server ignores an index created again, mongomock re-checks
    # every document against it, ignoring its partial filter.
    if "account_key" not in jobs.index_information():
        keyed = {"idempotency_key": {"$gt": ""}}  # non-empty strings; older documents have no key
        keys = [("account", 1), ("idempotency_key", 1)]
        jobs.create_index(keys, name="account_key", unique=True, partialFilterExpression=keyed)
    keys = [("job_id", 1), ("attempt", 1), ("stream", 1), ("offset", 1)]
    db["job_output"].create_index(keys, name="job_attempt_stream_offset", unique=True)


def setup_schedules(db: Database[Doc]) -> None:
    """The indexes of the schedule store (idempotent: runs at every start)."""
    db["saved_jobs"].create_index([("account", 1), ("name", 1), ("version", 1)], unique=True, name="name_version")
    db["schedules"].create_index([("account", 1), ("name", 1)], unique=True, name="account_name")
    db["schedules"].create_index([("paused", 1), ("next_due_at", 1)], name="due")
    db["schedule_fires"].create_index([("schedule_id", 1), ("scheduled_at", 1)], unique=True, name="fire")
    db["schedule_fires"].create_index([("outcome", 1), ("scheduled_at", 1)], name="outcome")


def setup_secrets(db: Database[Doc]) -> None:
    """The index of the secret store (idempotent: runs at every start): one document per
    (account, name), `{account, name, ciphertext, created_at, updated_at}`."""
    db["secrets"].create_index([("account", 1), ("name", 1)], unique=True, name="account_name")
