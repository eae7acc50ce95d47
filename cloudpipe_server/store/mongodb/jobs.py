"""MongoDB job store (pymongo). pymongo blocks, so every operation runs in a worker
thread, never on the event loop (`database.py`: the one client, shared with the schedule
store, threads, error mapping).

Documents: one per job in `jobs`, `_id` being the job id; ids come from the counter
document `{_id: "jobs", seq}` in `counters`, advanced with `find_one_and_update($inc)`.
Times are int64 nanoseconds (`_shared.to_ns`; BSON dates only keep milliseconds) and
byte fields are `bson.Binary`. `env` and `tags` are stored as [key, value] pairs because
their keys are user data and MongoDB field names must not contain "." or start with "$".

Atomicity, honestly:
- A claim is one `find_one_and_update` per job (queued -> processing, oldest first), so
  no job is ever returned to two claimers; a claim of several jobs is not one step.
- `submit` inserts all its jobs in one transaction when the server supports them (a
  replica set or sharded cluster). A standalone server has no transactions: then the
  jobs go in with one ordered `insert_many`, and a failure in the middle of it (a
  dropped connection, say) can leave the first jobs of the batch stored. Invalid
  dependencies are still rejected before anything is written.
- Every other change is to one document at a time, made conditional (compare-and-set)
  on the state it was decided from. Settling WAITING jobs always runs after the write
  that may unblock them (after the submit transaction commits), so whichever of two
  concurrent writers settles last sees both writes; settling also runs on every reap
  pass, which would catch anything missed (`dependencies.py`).
- Idempotency keys are unique per account by a partial unique index. A submit looks
  the keys up first; a concurrent submit that stores one of them in between makes the
  insert fail on the index: a transactional submit then starts over, a standalone one
  answers that spec with the other submit's job and goes on with the rest (its id for
  that spec is burnt).
- Ids never repeat, but a failed submit can leave a gap (its ids are burnt).
- A document holds at most 16 MiB: a finish whose outputs do not fit is recorded as
  ERROR without its outputs, saying why (keep the server's output cap well below that);
  a stalled job whose output does not fit keeps none, also saying why.
- Output of running jobs, and how it copes without transactions: `output.py`.
  One race remains: an append that checks its lease just before the reaper stalls the
  job, and inserts just after the reaper read the chunks, returns True although the
  stalled job does not keep those bytes.

Over 400 lines on purpose: `MongoJobStore` is this backend's whole `JobStore`, kept
together so every MongoDB query of a job's life (submit, claim, leases, finish, kills,
reaping, counts) reads in one place; output, dependencies, retention, identities and the
document shapes are already in their own modules beside it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bson import Binary
from pymongo import ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DocumentTooLarge, OperationFailure

from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.models import (
    TERMINAL_STATUSES,
    Attempt,
    Job,
    JobQuery,
    JobSpec,
    JobStatus,
    Outcome,
    OutputChunk,
    Stream,
)
from cloudpipe_server.store._shared import (
    OUTPUT_COLUMNS,
    collected_to_doc,
    decide_reap,
    dedupe,
    from_ns,
    int64,
    keys_of,
    offset64,
    reaped_attempt,
    to_ns,
)
from cloudpipe_server.store.base import FinishedCount, JobStore, Purged
from cloudpipe_server.store.mongodb import attempts, identity, output, retention
from cloudpipe_server.store.mongodb.database import Doc, MongoDatabase
from cloudpipe_server.store.mongodb.dependencies import settle_waiting
from cloudpipe_server.store.mongodb.quotas import running_overrides
from cloudpipe_server.store.mongodb.schema import NOT_STARTED, doc_to_job, new_doc, setup_jobs

_WAITING, _QUEUED, _PROCESSING = JobStatus.WAITING.value, JobStatus.QUEUED.value, JobStatus.PROCESSING.value
_UNFINISHED = [s.value for s in JobStatus if not s.terminal]
_NO_OUTPUT = dict.fromkeys(OUTPUT_COLUMNS, 0)
_EMPTY_OUTPUT = dict.fromkeys(OUTPUT_COLUMNS, b"")
_TERMINAL = [s.value for s in TERMINAL_STATUSES]
_TOO_LARGE = {10334, 17419}  # server codes: BSONObjectTooLarge, document grown past the limit by an update


class MongoJobStore(JobStore):
    """`JobStore` on the MongoDB database `mongo`, whose client the schedule store shares."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    @property
    def _jobs(self) -> Collection[Doc]:
        return self._mongo.db["jobs"]

    async def initialize(self) -> None:
        await self._mongo.connect(setup_jobs)

    async def close(self) -> None:
        await self._mongo.close()

    # -- jobs -------------------------------------------------------------------------

    async def submit(self, account: str, specs: Sequence[JobSpec], now: datetime) -> list[int]:
        return await self._mongo.run(self._submit, account, specs, now) if specs else []

    def _submit(self, account: str, specs: Sequence[JobSpec], now: datetime) -> list[int]:
        keys = keys_of(specs)

        def insert(session: ClientSession | None) -> list[int]:
            where = {"account": account, "idempotency_key": {"$in": keys, "$gt": ""}}  # $gt: the partial index
            existing = list(self._jobs.find(where, {"idempotency_key": 1}, session=session)) if keys else []
            plan = dedupe(specs, {doc["idempotency_key"]: doc["_id"] for doc in existing})
            if not plan.fresh:
                return plan.ids([])
            fresh = plan.fresh
            counter = self._mongo.db["counters"].find_one_and_update(
                {"_id": "jobs"}, {"$inc": {"seq": len(fresh)}}, return_document=ReturnDocument.AFTER, session=session
            )
            assert counter is not None, "initialize() creates the counter"
            ids = list(range(counter["seq"] - len(fresh) + 1, counter["seq"] + 1))
            wanted = sorted({int64(dep) for spec in fresh for dep in spec.depends_on})
            mine = self._jobs.find({"_id": {"$in": wanted}, "account": account}, {"_id": 1}, session=session)
            known = {d["_id"] for d in mine} if wanted else set()
            for index, spec in enumerate(fresh):  # a job may depend on an earlier one of its batch
                if missing := sorted(
                    {d for d in spec.depends_on if int64(d) != d} | (set(spec.depends_on) - known - set(ids[:index]))
                ):
                    raise InvalidArgument(f"depends_on: job {missing[0]} not found")
            documents = [new_doc(job_id, account, spec, now) for job_id, spec in zip(ids, fresh, strict=True)]
            return plan.ids(self._insert(documents, session))

        if self._mongo.transactions:
            for retry in itertools.count():  # a concurrent submit stored one of our keys: look them up again
                try:
                    with self._mongo.client.start_session() as session:
                        ids = session.with_transaction(insert)
                    break
                except BulkWriteError as exc:
                    if retry >= 3 or not _duplicate_keys(exc):
                        raise
        else:
            ids = insert(None)
        if any(spec.depends_on for spec in specs):
            settle_waiting(self._jobs, now, ids)  # after the commit: see the module docstring
        return ids

    def _insert(self, documents: list[Doc], session: ClientSession | None) -> list[int]:
        """Insert in order; returns the job id of each document. Without a transaction, a
        document whose key a concurrent submit stored first answers with that job."""
        ids: list[int] = [doc["_id"] for doc in documents]
        done = 0
        while done < len(documents):
            try:
                self._jobs.insert_many(documents[done:], ordered=True, session=session)
                break
            except BulkWriteError as exc:
                if session is not None or not _duplicate_keys(exc):
                    raise
                index = done + exc.details["writeErrors"][0]["index"]  # ordered: the first error ends the batch
                key = {"account": documents[index]["account"], "idempotency_key": documents[index]["idempotency_key"]}
                twin = self._jobs.find_one(key, {"_id": 1}) if key["idempotency_key"] else None
                if twin is None:
                    raise
                ids[index], done = twin["_id"], index + 1
        return ids

    async def get(self, job_id: int, account: str | None = None, *, with_output: bool = True) -> Job:
        return await self._mongo.run(self._get, job_id, account, with_output)

    def _get(self, job_id: int, account: str | None, with_output: bool = True) -> Job:
        job_id = int64(job_id)
        while True:
            doc = self._jobs.find_one({"_id": job_id}, attempts.WITHOUT_ATTEMPTS)
            if doc is None or (account is not None and doc["account"] != account):
                raise NotFound(f"job {job_id} not found")
            if not with_output:
                return doc_to_job(doc)
            job = output.with_live_output(self._mongo.db, doc_to_job(doc))
            if job.status is not JobStatus.PROCESSING or output.still_running(self._mongo.db, job_id, job.attempts):
                return job

    async def attempts(self, job_id: int, account: str | None = None) -> list[Attempt]:
        return await self._mongo.run(attempts.read, self._jobs, job_id, account)

    async def list_jobs(self, account: str, query: JobQuery) -> list[Job]:
        filters: list[tuple[object, str, str, object]] = [
            (query.ids, "_id", "$in", [int64(i) for i in query.ids]),
            (query.after_id, "_id", "$gte", int64(query.after_id)),
            (query.before_id, "_id", "$lt", int64(query.before_id)),
            (query.created_after, "created_at", "$gte", to_ns(query.created_after)),
            (query.created_before, "created_at", "$lt", to_ns(query.created_before)),
            (query.names, "name", "$in", list(query.names)),
            (query.statuses, "status", "$in", [s.value for s in query.statuses]),
        ]
        where: Doc = {"account": account}
        for given, field, operator, value in filters:
            if given:  # empty tuples, id 0 and None mean no filter (a datetime is always true)
                where.setdefault(field, {})[operator] = value

        # a summary: the outputs are not sent (the job comes with them empty)
        fields = attempts.WITHOUT_ATTEMPTS if query.with_output else {**attempts.WITHOUT_ATTEMPTS, **_NO_OUTPUT}

        def read() -> list[Job]:
            cursor = self._jobs.find(where, fields).sort("_id", -1 if query.newest_first else 1)
            return [doc_to_job({**_EMPTY_OUTPUT, **doc}) for doc in cursor.limit(max(query.limit, 0))]

        # MongoDB reads limit 0 as "no limit", SQL as "nothing"; negative is "no limit" in both.
        return await self._mongo.run(read) if query.limit != 0 else []

    async def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int, per_account_limit: int = 0
    ) -> list[Job]:
        def claim() -> list[Job]:
            lease_fields = {"lease_owner": owner, "lease_expires_at": to_ns(now + lease), "started_at": to_ns(now)}
            fresh = {"status": _PROCESSING, "container_started_at": None, "container_id": "", **lease_fields}
            change = {"$set": fresh, "$inc": {"attempts": 1}}
            due: Doc = {"status": _QUEUED, "$or": [{"run_after": None}, {"run_after": {"$lte": to_ns(now)}}]}
            running: dict[str, int] = {}
            overrides = running_overrides(self._mongo.db)  # each account's own running limit, if set

            def limit_of(account: str) -> int:
                return overrides.get(account, per_account_limit)

            limited = per_account_limit > 0 or any(n > 0 for n in overrides.values())
            if limited:  # concurrent claimers may overshoot, each by one job: see base.py
                pipeline: list[Doc] = [
                    {"$match": {"status": _PROCESSING}},
                    {"$group": {"_id": "$account", "n": {"$sum": 1}}},
                ]
                running = {row["_id"]: row["n"] for row in self._jobs.aggregate(pipeline)}
            claimed: list[Job] = []
            while len(claimed) < limit:  # one atomic queued -> processing step per job
                full = [account for account, n in running.items() if n >= limit_of(account) > 0]
                where = {**due, "account": {"$nin": full}} if full else due
                doc = self._jobs.find_one_and_update(
                    where, change, sort=[("_id", 1)], return_document=ReturnDocument.AFTER
                )
                if doc is None:
                    break
                if limited:  # counted again after each claim: a stale count errs by one job
                    running[doc["account"]] = self._jobs.count_documents(
                        {"status": _PROCESSING, "account": doc["account"]}
                    )
                claimed.append(doc_to_job(doc))
            return claimed

        return await self._mongo.run(claim)

    async def owned(self, owner: str) -> list[Job]:
        def read() -> list[Job]:
            where = {"status": _PROCESSING, "lease_owner": owner}
            jobs = [self._get(doc["_id"], None) for doc in self._jobs.find(where, {"_id": 1}).sort("_id", 1)]
            return [job for job in jobs if job.status is JobStatus.PROCESSING and job.lease_owner == owner]

        return await self._mongo.run(read)

    async def append_output(
        self, job_id: int, owner: str, chunks: Sequence[OutputChunk], *, attempt: int | None = None
    ) -> bool:
        return await self._mongo.run(output.append, self._mongo.db, job_id, owner, chunks, attempt)

    async def read_output(self, job_id: int, stream: Stream, offset: int, account: str | None = None) -> bytes:
        return await self._mongo.run(output.read, self._mongo.db, int64(job_id), stream, offset64(offset), account)

    async def extend_leases(
        self, owner: str, job_ids: Sequence[int], until: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> set[int]:
        def extend() -> set[int]:
            change = {"$set": {"lease_expires_at": to_ns(until)}}
            wanted = attempts or {}
            return {
                i for i in job_ids if self._jobs.update_one(output.held(i, owner, wanted.get(i)), change).matched_count
            }

        return await self._mongo.run(extend) if job_ids else set()

    async def mark_started(
        self,
        job_id: int,
        owner: str,
        container_id: str,
        container_started_at: datetime,
        *,
        attempt: int | None = None,
    ) -> None:
        await self._mongo.run(
            self._jobs.update_one,
            output.held(job_id, owner, attempt),
            {"$set": {"container_id": container_id, "container_started_at": to_ns(container_started_at)}},
        )

    async def finish(self, job_id: int, owner: str, outcome: Outcome, *, attempt: int | None = None) -> bool:
        return await self._mongo.run(self._finish, job_id, owner, outcome, attempt)

    def _finish(self, job_id: int, owner: str, outcome: Outcome, attempt: int | None) -> bool:
        held = output.held(job_id, owner, attempt)
        fields: Doc = {
            "finished_at": to_ns(outcome.finished_at),
            "reason": outcome.reason,
            "return_code": outcome.return_code,
            "stdout": Binary(outcome.stdout),
            "stderr": Binary(outcome.stderr),
            "result": Binary(outcome.result),
            "collected": collected_to_doc(outcome.collected),
            "lease_owner": "",
            "lease_expires_at": None,
        }
        while True:  # compare-and-set on kill_requested: a kill may arrive meanwhile
            doc = self._jobs.find_one(held, {"kill_requested": 1, "attempts": 1, "started_at": 1})
            if doc is None:
                return False
            killed = doc["kill_requested"] and outcome.status is JobStatus.ERROR
            status = JobStatus.KILLED if killed else outcome.status
            where = {**held, "kill_requested": doc["kill_requested"], "attempts": doc["attempts"]}
            change = {**fields, "status": status.value}
            ended = Attempt(
                job_id=job_id,
                number=doc["attempts"],
                status=status,
                ended_at=outcome.finished_at,
                started_at=from_ns(doc["started_at"]),
                return_code=outcome.return_code,
                reason=outcome.reason,
                owner=owner,
            )
            try:
                done = self._jobs.update_one(where, {"$set": change, "$push": attempts.push(ended)}).matched_count
            except (DocumentTooLarge, OperationFailure) as exc:
                if isinstance(exc, OperationFailure) and exc.code not in _TOO_LARGE:
                    raise
                size = len(outcome.stdout) + len(outcome.stderr) + len(outcome.result)
                reason = f"the job's outputs ({size} bytes) exceed MongoDB's 16 MiB document limit and were dropped"
                empty = {name: NOT_STARTED[name] for name in ("stdout", "stderr", "result")}
                change = {**change, **empty, "status": JobStatus.ERROR.value, "reason": reason}
                ended = replace(ended, status=JobStatus.ERROR, reason=reason)
                done = self._jobs.update_one(where, {"$set": change, "$push": attempts.push(ended)}).matched_count
            if done:
                output.discard(self._mongo.db, job_id)
                settle_waiting(self._jobs, outcome.finished_at, [job_id])
                return True

    async def unclaim(self, job_id: int, owner: str, now: datetime, reason: str, *, attempt: int | None = None) -> bool:
        def update() -> bool:
            held = output.held(job_id, owner, attempt)
            doc = self._jobs.find_one(held, {"attempts": 1})
            if doc is None:
                return False
            # first, while the job is held: once QUEUED, another claimer's attempt (with the
            # same number) may append. A run that never started has no output anyway.
            output.discard(self._mongo.db, job_id, up_to_attempt=doc["attempts"])
            fields: Doc = {
                "status": _QUEUED,
                "lease_owner": "",
                "lease_expires_at": None,
                "started_at": None,
                "container_id": "",
                "container_started_at": None,
                "reason": reason,
            }
            found = self._jobs.find_one_and_update(
                {**held, "attempts": doc["attempts"]},
                {"$set": fields, "$inc": {"attempts": -1}},
                projection={"kill_requested": 1},
            )
            if found is None:
                return False
            if found["kill_requested"]:
                self._kill([job_id], now)
                settle_waiting(self._jobs, now, [job_id])
            return True

        return await self._mongo.run(update)

    async def request_kill(self, job_id: int, account: str, now: datetime) -> Job:
        def update() -> Job:
            job = self._get(job_id, account)
            if job.status.terminal:
                return job
            self._kill([job_id], now)
            settle_waiting(self._jobs, now, [job_id])
            return self._get(job_id, account)

        return await self._mongo.run(update)

    async def kill_all(self, account: str, now: datetime) -> list[int]:
        def update() -> list[int]:
            where = {"account": account, "status": {"$in": _UNFINISHED}}
            ids = [doc["_id"] for doc in self._jobs.find(where, {"_id": 1}).sort("_id", 1)]
            self._kill(ids, now)
            settle_waiting(self._jobs, now, ids)
            return ids

        return await self._mongo.run(update)

    async def kill_requested(self, job_ids: Sequence[int]) -> set[int]:
        def read() -> set[int]:
            where = {"_id": {"$in": [int64(i) for i in job_ids]}, "kill_requested": True, "status": _PROCESSING}
            return {doc["_id"] for doc in self._jobs.find(where, {"_id": 1})}

        return await self._mongo.run(read) if job_ids else set()

    async def unfinished_accounts(self, after: str, limit: int) -> list[str]:
        def read() -> list[str]:
            pipeline: list[Doc] = [
                {"$match": {"status": {"$in": _UNFINISHED}, "account": {"$gt": after}}},
                {"$group": {"_id": "$account"}},
                {"$sort": {"_id": 1}},
                {"$limit": limit},
            ]
            return [row["_id"] for row in self._jobs.aggregate(pipeline)]

        return await self._mongo.run(read)

    async def counts(self, account: str) -> dict[JobStatus, int]:
        def read() -> dict[JobStatus, int]:
            counts = {status: 0 for status in JobStatus}
            pipeline: list[Doc] = [{"$match": {"account": account}}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
            for row in self._jobs.aggregate(pipeline):
                counts[JobStatus(row["_id"])] = row["n"]
            return counts

        return await self._mongo.run(read)

    async def counts_by_account(self) -> dict[str, dict[JobStatus, int]]:
        def read() -> dict[str, dict[JobStatus, int]]:
            found: dict[str, dict[JobStatus, int]] = {}
            pipeline: list[Doc] = [{"$group": {"_id": {"a": "$account", "s": "$status"}, "n": {"$sum": 1}}}]
            for row in self._jobs.aggregate(pipeline):
                key = row["_id"]
                found.setdefault(key["a"], {status: 0 for status in JobStatus})[JobStatus(key["s"])] = row["n"]
            return found

        return await self._mongo.run(read)

    async def finished_since(self, since: datetime, account: str | None = None) -> list[FinishedCount]:
        start = to_ns(since)

        def read() -> list[FinishedCount]:
            match: Doc = {"finished_at": {"$gte": start}}
            if account is not None:
                match["account"] = account
            minute = {"$floor": {"$divide": [{"$subtract": ["$finished_at", start]}, 60_000_000_000]}}
            ran = {"$cond": [{"$gt": ["$started_at", None]}, {"$subtract": ["$finished_at", "$started_at"]}, 0]}
            pipeline: list[Doc] = [
                {"$match": match},
                {
                    "$group": {
                        "_id": {"a": "$account", "s": "$status", "m": minute},
                        "n": {"$sum": 1},
                        "rt": {"$sum": ran},
                    }
                },
            ]
            return [
                FinishedCount(r["_id"]["a"], int(r["_id"]["m"]), JobStatus(r["_id"]["s"]), r["n"], int(r["rt"]))
                for r in self._jobs.aggregate(pipeline)
            ]

        return await self._mongo.run(read)

    async def reap_expired(self, now: datetime, max_attempts: int) -> list[Job]:
        return await self._mongo.run(self._reap_expired, now, max_attempts)

    def _reap_expired(self, now: datetime, max_attempts: int) -> list[Job]:
        expired = {"status": _PROCESSING, "lease_expires_at": {"$lt": to_ns(now)}}
        reaped: list[int] = []
        for doc in list(self._jobs.find(expired, attempts.WITHOUT_ATTEMPTS).sort("_id", 1)):
            job = doc_to_job(doc)
            kept: Doc = {}
            decision = decide_reap(job, now, max_attempts)
            change: Doc = {"status": decision.status.value, "reason": decision.reason}
            if decision.requeued:
                change["run_after"] = to_ns(decision.run_after)
            else:
                change["finished_at"] = to_ns(now)
                live = output.with_live_output(self._mongo.db, job)
                kept = {"stdout": Binary(live.stdout), "stderr": Binary(live.stderr)}
            # Conditional on what was read: a lease extended or a job finished meanwhile is left alone.
            same = {**expired, "_id": job.id, "lease_owner": job.lease_owner, "kill_requested": job.kill_requested}
            change |= {"lease_owner": "", "lease_expires_at": None}
            ended = reaped_attempt(job, decision, now)
            try:
                matched = self._jobs.update_one(
                    same, {"$set": change | kept, "$push": attempts.push(ended)}
                ).matched_count
            except (DocumentTooLarge, OperationFailure) as exc:
                if isinstance(exc, OperationFailure) and exc.code not in _TOO_LARGE:
                    raise
                size = len(kept["stdout"]) + len(kept["stderr"])
                change["reason"] += (
                    f"; its output ({size} bytes) exceeds MongoDB's 16 MiB document limit and was dropped"
                )
                ended = replace(ended, reason=change["reason"])
                matched = self._jobs.update_one(same, {"$set": change, "$push": attempts.push(ended)}).matched_count
            if matched:
                output.discard(self._mongo.db, job.id, up_to_attempt=job.attempts)
                reaped.append(job.id)
        settle_waiting(self._jobs, now, None)  # every pass: catches what a dead process left
        return [self._get(job_id, None) for job_id in reaped]

    # -- helpers (blocking) ------------------------------------------------------------

    def _kill(self, job_ids: Sequence[int], now: datetime) -> None:
        """Flag a kill; jobs that never started end KILLED here and now."""
        ids = {"$in": list(job_ids)}
        killed = {"status": JobStatus.KILLED.value, "finished_at": to_ns(now), "reason": "killed before it started"}
        self._jobs.update_many({"_id": ids, "status": {"$nin": _TERMINAL}}, {"$set": {"kill_requested": True}})
        self._jobs.update_many({"_id": ids, "status": {"$in": [_WAITING, _QUEUED]}}, {"$set": killed})

    # -- removal ----------------------------------------------------------------------

    async def delete_finished(self, account: str, job_ids: Sequence[int]) -> list[int]:
        return await self._mongo.run(retention.delete_finished, self._mongo.db, account, job_ids)

    async def purge(self, output_before: datetime | None, jobs_before: datetime | None, limit: int) -> Purged:
        def purge() -> Purged:
            db = self._mongo.db
            jobs = retention.purge_jobs(db, jobs_before, limit) if jobs_before is not None else 0
            outputs = retention.purge_output(db, output_before, limit) if output_before is not None else 0
            return Purged(jobs, outputs)

        return await self._mongo.run(purge)

    async def trim_output(self, account_bytes: int, limit: int) -> int:
        return await self._mongo.run(retention.trim_output, self._mongo.db, account_bytes, limit)

    # -- server identities ------------------------------------------------------------

    async def hold_identity(
        self, server_id: str, holder: str, now: datetime, until: datetime, *, replacing: str = ""
    ) -> str:
        coll = self._mongo.db["server_identities"]
        now_ns, until_ns = to_ns(now) or 0, to_ns(until) or 0
        return await self._mongo.run(identity.hold, coll, server_id, holder, now_ns, until_ns, replacing)

    async def release_identity(self, server_id: str, holder: str) -> None:
        await self._mongo.run(identity.release, self._mongo.db["server_identities"], server_id, holder)


def _duplicate_keys(exc: BulkWriteError) -> bool:
    """Whether a bulk write failed only on a unique index (an idempotency key)."""
    return all(error["code"] == output.DUPLICATE_KEY for error in exc.details["writeErrors"])
