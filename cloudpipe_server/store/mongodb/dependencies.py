"""Dependencies in the MongoDB job store: settling WAITING jobs, after every write that
can unblock them (a submit with dependencies, after its transaction commits; finish;
kills; every reap pass). A write settles only the WAITING jobs that depend on the jobs
it changed (an index on `depends_on`); the reap pass looks at every WAITING job.
Whichever of two concurrent writers settles last sees both writes (see the `jobs`
module docstring). Blocking: the store runs it in a thread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.collection import Collection

from cloudpipe_server.models import JobStatus
from cloudpipe_server.store._shared import decide_settle, to_ns
from cloudpipe_server.store.mongodb.database import Doc

_WAITING, _QUEUED = JobStatus.WAITING.value, JobStatus.QUEUED.value


def settle_waiting(jobs: Collection[Doc], now: datetime, changed: Sequence[int] | None) -> None:
    """Settle the WAITING jobs among `changed` (the jobs a write changed or added) and
    those depending on them (the `depends_on` index); `None` settles every WAITING job
    (the reaper's pass). Queues a job whose dependencies all ended DONE, fails one with
    a dependency that ended otherwise. The jobs settled then count as changed, until a
    pass changes nothing (chains). Rows are decided in id order by
    `_shared.decide_settle`, as in every backend; each write is conditional on the job
    still WAITING."""
    ids = None if changed is None else sorted(set(changed))
    while ids is None or ids:
        where: Doc = {"status": _WAITING}
        if ids is not None:
            where["$or"] = [{"_id": {"$in": ids}}, {"depends_on": {"$in": ids}}]
        waiting = list(jobs.find(where, {"depends_on": 1}).sort("_id", 1))
        if not waiting:
            return
        wanted = sorted({dep for doc in waiting for dep in doc["depends_on"]})
        statuses = {d["_id"]: JobStatus(d["status"]) for d in jobs.find({"_id": {"$in": wanted}}, {"status": 1})}
        ids = []
        for decision in decide_settle(((doc["_id"], doc["depends_on"]) for doc in waiting), statuses):
            change: Doc = {"status": decision.status.value}
            if decision.status is JobStatus.ERROR:
                change |= {"finished_at": to_ns(now), "reason": decision.reason}
            if jobs.update_one({"_id": decision.job_id, "status": _WAITING}, {"$set": change}).matched_count:
                ids.append(decision.job_id)
