"""Ended attempts of jobs in the MongoDB store: an array `attempt_log` embedded in the
job's document, one element per attempt (`_shared.attempt_values`), oldest first, capped
at the latest `ATTEMPTS_KEPT` by `$slice`. It is pushed by the very update that ends the
attempt (`finish`, `reap_expired`), so it is atomic with it without a transaction, and
goes with the document when the job is deleted. Documents of older versions have none.
Reads of jobs leave it out (`WITHOUT_ATTEMPTS`)."""

from __future__ import annotations

from pymongo.collection import Collection

from cloudpipe_server.errors import NotFound
from cloudpipe_server.models import ATTEMPTS_KEPT, Attempt
from cloudpipe_server.store._shared import attempt_from_record, attempt_values, int64
from cloudpipe_server.store.mongodb.database import Doc

FIELD = "attempt_log"
# The projection of job reads: everything but the attempts.
WITHOUT_ATTEMPTS: Doc = {FIELD: 0}


def push(attempt: Attempt) -> Doc:
    """The `$push` of an update that ends `attempt`."""
    return {FIELD: {"$each": [attempt_values(attempt)], "$slice": -ATTEMPTS_KEPT}}


def read(jobs: Collection[Doc], job_id: int, account: str | None) -> list[Attempt]:
    """The job's attempts; raises NotFound like `JobStore.get`."""
    doc = jobs.find_one({"_id": int64(job_id)}, {"account": 1, FIELD: 1})
    if doc is None or (account is not None and doc["account"] != account):
        raise NotFound(f"job {job_id} not found")
    return [attempt_from_record(entry) for entry in doc.get(FIELD, [])]
