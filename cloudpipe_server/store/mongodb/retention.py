"""Removing finished jobs in the MongoDB store: `rm` of a caller's jobs and the bounded
retention batches (`JobStore.delete_finished`, `JobStore.purge`). Blocking: the store
runs these in a thread. Without multi-document transactions a removal is not one step,
but it is safe without one: every write is conditional on the job being finished, and a
finished job never changes again. A finished job a WAITING job still depends on stays
(the waiting job is settled by its dependencies' statuses)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bson import Binary
from pymongo.database import Database

from cloudpipe_server.errors import FailedPrecondition, NotFound
from cloudpipe_server.models import TERMINAL_STATUSES, JobStatus
from cloudpipe_server.store._shared import decide_trim, int64, to_ns
from cloudpipe_server.store.mongodb.database import Doc

_TERMINAL = [s.value for s in TERMINAL_STATUSES]
_WAITING = JobStatus.WAITING.value
_EMPTY = Binary(b"")
_OUTPUTS = ("stdout", "stderr", "result", "stdin")


def delete_finished(db: Database[Doc], account: str, job_ids: Sequence[int]) -> list[int]:
    ids = sorted({int64(i) for i in job_ids})
    if not ids:
        return []
    jobs = db["jobs"]
    found = {doc["_id"]: doc for doc in jobs.find({"_id": {"$in": ids}}, {"account": 1, "status": 1})}
    for job_id in ids:
        doc = found.get(job_id)
        if doc is None or doc["account"] != account:
            raise NotFound(f"job {job_id} not found")
        if doc["status"] not in _TERMINAL:
            raise FailedPrecondition(f"job {job_id} is {doc['status']}: kill it first, or wait until it ends")
    waiting = jobs.find_one({"status": _WAITING, "depends_on": {"$in": ids}}, {"depends_on": 1})
    if waiting is not None:
        dep = min(d for d in waiting["depends_on"] if d in set(ids))
        raise FailedPrecondition(f"job {dep} is a dependency of waiting job {waiting['_id']}")
    _delete(db, ids)
    return ids


def purge_jobs(db: Database[Doc], before: datetime, limit: int) -> int:
    jobs = db["jobs"]
    where: Doc = {"finished_at": {"$lt": to_ns(before)}, "status": {"$in": _TERMINAL}}
    ids = [doc["_id"] for doc in jobs.find(where, {"_id": 1}).sort("finished_at", 1).limit(limit)]
    if not ids:
        return 0
    needed = {
        dep
        for doc in jobs.find({"status": _WAITING, "depends_on": {"$in": ids}}, {"depends_on": 1})
        for dep in doc["depends_on"]
    }
    ids = [i for i in ids if i not in needed]
    return _delete(db, ids)


def purge_output(db: Database[Doc], before: datetime, limit: int) -> int:
    jobs = db["jobs"]
    where: Doc = {
        "finished_at": {"$lt": to_ns(before)},
        "status": {"$in": _TERMINAL},
        "$or": [{field: {"$ne": _EMPTY}} for field in _OUTPUTS],
    }
    ids = [doc["_id"] for doc in jobs.find(where, {"_id": 1}).sort("finished_at", 1).limit(limit)]
    if not ids:
        return 0
    cleared = jobs.update_many(
        {"_id": {"$in": ids}, "status": {"$in": _TERMINAL}}, {"$set": dict.fromkeys(_OUTPUTS, _EMPTY)}
    )
    return cleared.modified_count


def trim_output(db: Database[Doc], budget: int, limit: int) -> int:
    """Sizes are added up here, one document at a time (the query language mongomock
    speaks has no byte size of a binary field): a sweep reads every finished job's
    output once. Servers trimming at once may free a little more than the excess."""
    jobs = db["jobs"]
    projection = {"account": 1, **dict.fromkeys(_OUTPUTS, 1)}
    sized: list[tuple[str, int, int]] = []
    totals: dict[str, int] = {}
    cursor = jobs.find({"status": {"$in": _TERMINAL}}, projection).sort(
        [("account", 1), ("finished_at", 1), ("_id", 1)]
    )
    for doc in cursor:
        size = sum(len(doc.get(field) or b"") for field in _OUTPUTS)
        if size:
            sized.append((doc["account"], doc["_id"], size))
            totals[doc["account"]] = totals.get(doc["account"], 0) + size
    ids = decide_trim(sized, totals, budget, limit)
    if not ids:
        return 0
    jobs.update_many({"_id": {"$in": ids}, "status": {"$in": _TERMINAL}}, {"$set": dict.fromkeys(_OUTPUTS, _EMPTY)})
    return len(ids)


def _delete(db: Database[Doc], ids: Sequence[int]) -> int:
    if not ids:
        return 0
    deleted = db["jobs"].delete_many({"_id": {"$in": list(ids)}, "status": {"$in": _TERMINAL}}).deleted_count
    db["job_output"].delete_many({"job_id": {"$in": list(ids)}})
    return deleted
