"""Output of running jobs in the MongoDB store: one document per appended chunk in
`job_output` ({job_id, attempt, stream, offset, data, end}, unique on the first four
(`schema.setup_jobs`);
`end` = offset + length, absent from chunks of older versions), so an
append writes only its own bytes and no job document grows towards the 16 MiB limit
while the job runs. Chunks matter only while their job is PROCESSING: `finish`
replaces them by the outcome's output, the reaper discards them (requeue) or moves them
into the job's document (stall), and then deletes them.

Without transactions, ending a lease and deleting its chunks are two steps, so chunks
carry the attempt (the job's `attempts` when they were appended) and only the current
attempt's are read: chunks of a lost attempt that survive a race, or a crash between
the two steps, are never mixed into another attempt's output. An append checks the
lease, inserts, then checks the lease again and deletes what it inserted if the lease
was lost meanwhile. Readers of a PROCESSING job re-check after reading its chunks that
the same attempt still runs (`still_running`), else read again: chunks are deleted only
after their attempt ended. A stream's chunks never overlap: an append stores only what
goes beyond the end of the stream's last chunk (`_shared.unstored`); reads stop at the
first gap (`_shared.read_from`). All functions block (the store runs them in a thread)."""

from __future__ import annotations

from collections.abc import Sequence

from bson import Binary
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from cloudpipe_server.errors import NotFound
from cloudpipe_server.models import Job, JobStatus, OutputChunk, Stream
from cloudpipe_server.store._shared import read_from, unstored
from cloudpipe_server.store.mongodb.database import Doc

_PROCESSING = JobStatus.PROCESSING.value
DUPLICATE_KEY = 11000


def held(job_id: int, owner: str, attempt: int | None) -> Doc:
    """The filter of a job whose lease `owner` holds (for `attempt`, unless None)."""
    where: Doc = {"_id": job_id, "lease_owner": owner, "status": _PROCESSING}
    if attempt is not None:
        where["attempts"] = attempt
    return where


def append(
    db: Database[Doc], job_id: int, owner: str, chunks: Sequence[OutputChunk], attempt: int | None = None
) -> bool:
    lease = held(job_id, owner, attempt)
    job = db["jobs"].find_one(lease, {"attempts": 1})
    if job is None:
        return False
    attempt = job["attempts"]
    ends = {int(s): _stored_end(db, job_id, attempt, int(s)) for s in {c.stream for c in chunks if c.data}}
    docs = [
        {"job_id": job_id, "attempt": attempt, "stream": int(c.stream), "offset": c.offset, "data": Binary(c.data)}
        | {"end": c.offset + len(c.data)}
        for c in unstored(chunks, ends)
    ]
    if not docs:
        return True
    failed: set[int] = set()
    try:
        _output(db).insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details["writeErrors"]
        if any(error["code"] != DUPLICATE_KEY for error in errors):
            raise
        failed = {error["index"] for error in errors}  # stored before: a retried append
    if db["jobs"].find_one({**lease, "attempts": attempt}, {"_id": 1}) is None:  # lost while inserting
        _output(db).delete_many({"_id": {"$in": [doc["_id"] for i, doc in enumerate(docs) if i not in failed]}})
        return False
    return True


def _stored_end(db: Database[Doc], job_id: int, attempt: int, stream: int) -> int:
    """The end of the stream's last chunk (0 without chunks)."""
    where = {"job_id": job_id, "attempt": attempt, "stream": stream}
    last = _output(db).find_one(where, {"offset": 1, "end": 1}, sort=[("offset", -1)])
    if last is None:
        return 0
    if "end" not in last:  # stored by an older version
        last = _output(db).find_one({"_id": last["_id"]}, {"offset": 1, "data": 1}) or {"offset": 0, "data": b""}
        return int(last["offset"]) + len(last["data"])
    return int(last["end"])


def stream_from(db: Database[Doc], job_id: int, attempt: int, stream: Stream, offset: int) -> bytes:
    """The stored chunks of one stream of one attempt, from `offset` on, up to its first
    gap: the extents of all chunks, the bytes only of those that end after `offset`."""
    where: Doc = {"job_id": job_id, "attempt": attempt, "stream": int(stream)}
    extents = list(_output(db).find(where, {"offset": 1, "end": 1}).sort("offset", 1))
    if any("end" not in doc for doc in extents):  # chunks of an older version: read them all
        docs = list(_output(db).find(where, {"offset": 1, "data": 1}).sort("offset", 1))
        return read_from(((doc["offset"], len(doc["data"]), bytes(doc["data"])) for doc in docs), offset)
    wanted = _output(db).find({**where, "end": {"$gt": offset}}, {"data": 1})
    data = {doc["_id"]: bytes(doc["data"]) for doc in wanted}
    return read_from(((doc["offset"], doc["end"] - doc["offset"], data.get(doc["_id"])) for doc in extents), offset)


def with_live_output(db: Database[Doc], job: Job) -> Job:
    """`job`, with the output appended so far when it is PROCESSING."""
    if job.status is JobStatus.PROCESSING:
        job.stdout, job.stderr = (stream_from(db, job.id, job.attempts, s, 0) for s in (Stream.STDOUT, Stream.STDERR))
    return job


def read(db: Database[Doc], job_id: int, stream: Stream, offset: int, account: str | None) -> bytes:
    name, offset = "stdout" if stream is Stream.STDOUT else "stderr", max(offset, 0)
    while True:
        doc = db["jobs"].find_one({"_id": job_id}, {"account": 1, "status": 1, "attempts": 1, name: 1})
        if doc is None or (account is not None and doc["account"] != account):
            raise NotFound(f"job {job_id} not found")
        if doc["status"] != _PROCESSING:
            return bytes(doc[name])[offset:]
        tail = stream_from(db, job_id, doc["attempts"], stream, offset)
        if still_running(db, job_id, doc["attempts"]):
            return tail


def still_running(db: Database[Doc], job_id: int, attempt: int) -> bool:
    return db["jobs"].find_one({"_id": job_id, "status": _PROCESSING, "attempts": attempt}, {"_id": 1}) is not None


def discard(db: Database[Doc], job_id: int, up_to_attempt: int | None = None) -> None:
    """Delete the job's chunks (of attempts up to `up_to_attempt`, when given)."""
    where: Doc = {"job_id": job_id}
    if up_to_attempt is not None:
        where["attempt"] = {"$lte": up_to_attempt}
    _output(db).delete_many(where)


def _output(db: Database[Doc]) -> Collection[Doc]:
    return db["job_output"]
