"""MongoDB schedule store (pymongo, on the client it shares with the job store: the
backend's one `database.MongoDatabase`; every call runs in a worker thread).

Collections (indexes: `schema.setup_schedules`): `saved_jobs` (unique index
account+name+version), `schedules` (`_id` is the schedule id; unique index account+name)
and `schedule_fires` (unique index schedule_id+scheduled_at: a fire is recorded once,
whoever records it). Specs are kept
as JSON strings, since their env/tags keys are user data that MongoDB field names
could not hold. Times are int64 nanoseconds.

Atomicity, honestly: a claim is one `find_one_and_update` per schedule, so no schedule
is leased twice. Recording the fires of one schedule takes a transaction when the
server has them (replica set, sharded cluster). Without transactions it is: check the
lease, insert each fire (duplicates rejected by the unique index), move the cursor on
the condition that the lease still holds. A lease lost between the check and the
cursor update (it expired and another scheduler claimed the schedule in that instant)
can leave fires recorded with the cursor unmoved; the next pass then skips them as
recorded, so no fire runs twice either way.

Fires already recorded (a schedule update writes back a cursor read before a pass
moved it, so a pass may decide fires again) are looked up with `find` and not inserted
again: in a transaction, a duplicate-key error aborts the server-side transaction
(MongoDB driver spec), so the next operation would fail with NoSuchTransaction, a
transient error, and `with_transaction` would run the callback again and again for up
to 120 s. Should a fire be inserted by someone else between that `find` and the insert
(a manual trigger at the same instant), the duplicate-key error ends the transaction and
the record is tried again, once, when the `find` sees it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from bson import Binary
from pymongo import ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from cloudpipe_server.errors import FailedPrecondition
from cloudpipe_server.models import JobSpec
from cloudpipe_server.scheduler.models import Fire, SavedJob, SavedJobWrite, Schedule, ScheduleSpec, ScheduleWrite
from cloudpipe_server.store._shared import (
    FIRE_COLUMNS,
    check_saved_job_write,
    check_schedule_write,
    cursor_ns,
    fire_from_row,
    fire_values,
    from_ns,
    saved_job_exists,
    saved_job_from_row,
    saved_job_missing,
    schedule_exists,
    schedule_from_row,
    schedule_missing,
    schedule_spec_to_doc,
    spec_to_doc,
    to_ns,
)
from cloudpipe_server.store.base import FireRecord, OutcomeChange, ScheduleStore
from cloudpipe_server.store.mongodb.database import Doc, MongoDatabase
from cloudpipe_server.store.mongodb.schema import setup_schedules

_OPEN = ["pending", "buffered", "running"]


class MongoScheduleStore(ScheduleStore):
    """`ScheduleStore` on the MongoDB database `mongo`, whose client the job store shares."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    @property
    def _saved(self) -> Collection[Doc]:
        return self._mongo.db["saved_jobs"]

    @property
    def _schedules(self) -> Collection[Doc]:
        return self._mongo.db["schedules"]

    @property
    def _fires(self) -> Collection[Doc]:
        return self._mongo.db["schedule_fires"]

    async def initialize(self) -> None:
        await self._mongo.connect(setup_schedules)

    async def close(self) -> None:
        await self._mongo.close()

    # -- saved jobs ----------------------------------------------------------------

    async def create_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        try:
            await self._mongo.run(self._saved.insert_one, _saved_doc(account, name, 1, spec, description, now))
        except DuplicateKeyError:
            raise saved_job_exists(account, name) from None
        return SavedJob(account, name, 1, spec, now, description)

    async def update_saved_job(
        self, account: str, name: str, spec: JobSpec, description: str, now: datetime
    ) -> SavedJob:
        def insert() -> int:
            while True:  # a concurrent update took the version: take the next one
                latest = self._saved.find_one({"account": account, "name": name}, sort=[("version", -1)])
                if latest is None:
                    raise saved_job_missing(name)
                version = int(latest["version"]) + 1
                try:
                    self._saved.insert_one(_saved_doc(account, name, version, spec, description, now))
                except DuplicateKeyError:
                    continue
                return version

        return SavedJob(account, name, await self._mongo.run(insert), spec, now, description)

    async def get_saved_job(self, account: str, name: str, version: int = 0) -> SavedJob:
        def read() -> SavedJob:
            query: Doc = {"account": account, "name": name}
            doc = self._saved.find_one({**query, "version": version} if version else query, sort=[("version", -1)])
            if doc is None:
                exists = bool(version) and self._saved.find_one(query) is not None
                raise saved_job_missing(name, version if exists else 0)
            return saved_job_from_row(doc, json.loads(doc["spec_json"]))

        return await self._mongo.run(read)

    async def list_saved_jobs(self, account: str) -> list[SavedJob]:
        def read() -> list[SavedJob]:
            latest: dict[str, Doc] = {}
            for doc in self._saved.find({"account": account}, sort=[("name", 1), ("version", 1)]):
                latest[doc["name"]] = doc
            return [saved_job_from_row(doc, json.loads(doc["spec_json"])) for doc in latest.values()]

        return await self._mongo.run(read)

    async def delete_saved_job(self, account: str, name: str) -> None:
        result = await self._mongo.run(self._saved.delete_many, {"account": account, "name": name})
        if result.deleted_count == 0:
            raise saved_job_missing(name)

    # -- schedules -----------------------------------------------------------------

    async def create_schedule(self, schedule: Schedule) -> Schedule:
        doc = _schedule_doc(schedule)
        try:
            await self._mongo.run(self._schedules.insert_one, doc)
        except DuplicateKeyError:
            raise schedule_exists(schedule.account, schedule.name) from None
        return _schedule(doc)

    async def _change(self, account: str, name: str, changes: Doc, new_name: str) -> Schedule:
        try:
            doc = await self._mongo.run(
                self._schedules.find_one_and_update,
                {"account": account, "name": name},
                {"$set": {**changes, "lease_owner": "", "lease_expires_at": None}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raise schedule_exists(account, new_name) from None
        if doc is None:
            raise schedule_missing(name)
        return _schedule(doc)

    async def update_schedule(
        self, account: str, name: str, spec: ScheduleSpec, cursor: tuple[datetime, datetime] | None, now: datetime
    ) -> Schedule:
        fire_at, due_at = cursor_ns(cursor)
        changes = {**_spec_fields(spec), "next_fire_at": fire_at, "next_due_at": due_at, "updated_at": to_ns(now)}
        return await self._change(account, name, changes, spec.name)

    async def apply_changes(
        self, account: str, saved_jobs: Sequence[SavedJobWrite], schedules: Sequence[ScheduleWrite], now: datetime
    ) -> tuple[list[SavedJob], list[Schedule]]:
        if not self._mongo.transactions:
            raise FailedPrecondition(
                "apply: this MongoDB server has no transactions (a standalone server), so a file cannot be"
                " applied all or nothing; nothing was written. Run MongoDB as a replica set (one member is"
                " enough), or create and update the entries one at a time"
            )

        def apply() -> tuple[list[SavedJob], list[Schedule]]:
            with self._mongo.client.start_session() as session:
                return session.with_transaction(lambda s: self._apply(account, saved_jobs, schedules, now, s))

        return await self._mongo.run(apply)

    def _apply(
        self,
        account: str,
        saved_jobs: Sequence[SavedJobWrite],
        schedules: Sequence[ScheduleWrite],
        now: datetime,
        session: ClientSession,
    ) -> tuple[list[SavedJob], list[Schedule]]:
        """One attempt of the apply's transaction: every precondition read in it, then
        the writes. A concurrent writer of the same documents makes the server abort it
        (a write conflict, retried by `with_transaction`, whose next attempt sees the
        change and fails its precondition); a duplicate key (an entry created meanwhile)
        aborts it too and becomes FailedPrecondition."""
        for job in saved_jobs:
            latest = self._saved.find_one(
                {"account": account, "name": job.name}, sort=[("version", -1)], session=session
            )
            check_saved_job_write(job.name, job.expected_version, None if latest is None else int(latest["version"]))
        for write in schedules:
            found = self._schedules.find_one({"account": account, "name": write.schedule.name}, session=session)
            check_schedule_write(
                write.schedule.name, write.expected_updated_at, None if found is None else found["updated_at"]
            )
        stored_jobs = []
        for job in saved_jobs:
            version = job.expected_version + 1
            try:
                self._saved.insert_one(
                    _saved_doc(account, job.name, version, job.spec, job.description, now), session=session
                )
            except DuplicateKeyError:
                check_saved_job_write(job.name, job.expected_version, version)  # raises
            stored_jobs.append(SavedJob(account, job.name, version, job.spec, now, job.description))
        stored = []
        for write in schedules:
            schedule = write.schedule
            if write.expected_updated_at is None:
                try:
                    self._schedules.insert_one(_schedule_doc(schedule), session=session)
                except DuplicateKeyError:
                    check_schedule_write(schedule.name, None, to_ns(now))  # created meanwhile: raises
            else:
                fire_at, due_at = cursor_ns(schedule.cursor)
                changes = {
                    **_spec_fields(schedule.spec),
                    "next_fire_at": fire_at,
                    "next_due_at": due_at,
                    "updated_at": to_ns(now),
                    "lease_owner": "",
                    "lease_expires_at": None,
                }
                query = {"account": account, "name": schedule.name, "updated_at": to_ns(write.expected_updated_at)}
                if self._schedules.update_one(query, {"$set": changes}, session=session).matched_count != 1:
                    check_schedule_write(schedule.name, write.expected_updated_at, None)  # changed meanwhile: raises
            doc = self._schedules.find_one({"account": account, "name": schedule.name}, session=session)
            assert doc is not None  # written just now, in this transaction
            stored.append(_schedule(doc))
        return stored_jobs, stored

    async def set_paused(
        self, account: str, name: str, paused: bool, cursor: tuple[datetime, datetime] | None, now: datetime
    ) -> Schedule:
        fire_at, due_at = cursor_ns(cursor)
        changes = {"paused": paused, "next_fire_at": fire_at, "next_due_at": due_at, "updated_at": to_ns(now)}
        return await self._change(account, name, changes, name)

    async def get_schedule(self, account: str, name: str) -> Schedule:
        doc = await self._mongo.run(self._schedules.find_one, {"account": account, "name": name})
        if doc is None:
            raise schedule_missing(name)
        return _schedule(doc)

    async def schedules_by_id(self, ids: Sequence[str]) -> dict[str, Schedule]:
        docs = await self._mongo.run(lambda: list(self._schedules.find({"_id": {"$in": list(ids)}})))
        return {doc["_id"]: _schedule(doc) for doc in docs}

    async def list_schedules(self, account: str) -> list[Schedule]:
        docs = await self._mongo.run(lambda: list(self._schedules.find({"account": account}, sort=[("name", 1)])))
        return [_schedule(doc) for doc in docs]

    async def delete_schedule(self, account: str, name: str) -> None:
        def delete() -> None:
            doc = self._schedules.find_one_and_delete({"account": account, "name": name})
            if doc is None:
                raise schedule_missing(name)
            self._fires.delete_many({"schedule_id": doc["_id"]})

        await self._mongo.run(delete)

    async def schedules_using(self, account: str, saved_job: str) -> list[str]:
        query = {"account": account, "saved_job": saved_job}
        docs = await self._mongo.run(lambda: list(self._schedules.find(query, sort=[("name", 1)])))
        return [doc["name"] for doc in docs]

    # -- firing ---------------------------------------------------------------------

    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Schedule]:
        def claim() -> list[Schedule]:
            claimed: list[Schedule] = []
            query = {
                "paused": False,
                "next_due_at": {"$ne": None, "$lte": to_ns(now)},
                "$or": [{"lease_owner": ""}, {"lease_expires_at": {"$lt": to_ns(now)}}],
            }
            update = {"$set": {"lease_owner": owner, "lease_expires_at": to_ns(now + lease)}}
            while len(claimed) < limit:
                doc = self._schedules.find_one_and_update(
                    query, update, sort=[("next_due_at", 1)], return_document=ReturnDocument.AFTER
                )
                if doc is None:
                    break
                claimed.append(_schedule(doc))
            return claimed

        return await self._mongo.run(claim)

    async def record_fires(self, owner: str, records: Sequence[FireRecord]) -> list[list[Fire] | None]:
        def record_all() -> list[list[Fire] | None]:
            if not self._mongo.transactions:
                return [self._record(owner, record, None) for record in records]
            results: list[list[Fire] | None] = []
            with self._mongo.client.start_session() as session:
                for record in records:

                    def one(s: ClientSession, r: FireRecord = record) -> list[Fire] | None:
                        return self._record(owner, r, s)

                    try:
                        results.append(session.with_transaction(one))
                    except DuplicateKeyError:  # a fire inserted between our find and insert
                        results.append(session.with_transaction(one))
            return results

        return await self._mongo.run(record_all) if records else []

    def _record(self, owner: str, record: FireRecord, session: ClientSession | None) -> list[Fire] | None:
        leased = {"_id": record.schedule_id, "lease_owner": owner}
        if self._schedules.find_one(leased, session=session) is None:
            return None
        times = [to_ns(f.scheduled_at) for f in record.fires]
        query = {"schedule_id": record.schedule_id, "scheduled_at": {"$in": times}}
        found: list[Doc] = list(self._fires.find(query, {"scheduled_at": 1}, session=session)) if times else []
        known = {d["scheduled_at"] for d in found}
        inserted = []
        for fire in record.fires:
            if to_ns(fire.scheduled_at) in known:
                continue
            try:
                self._fires.insert_one(_fire_doc(fire), session=session)
            except DuplicateKeyError:
                if session is not None:
                    raise  # the transaction is aborted: see the module docstring
                continue
            inserted.append(fire)
        fire_at, due_at = cursor_ns(record.cursor)
        update = {"next_fire_at": fire_at, "next_due_at": due_at, "lease_owner": "", "lease_expires_at": None}
        self._schedules.update_one(leased, {"$set": update}, session=session)
        return inserted

    async def add_fire(self, fire: Fire) -> bool:
        try:
            await self._mongo.run(self._fires.insert_one, _fire_doc(fire))
        except DuplicateKeyError:
            return False
        return True

    async def next_due_at(self) -> datetime | None:
        query = {"paused": False, "next_due_at": {"$ne": None}}
        doc = await self._mongo.run(self._schedules.find_one, query, sort=[("next_due_at", 1)])
        return from_ns(doc["next_due_at"]) if doc is not None else None

    async def set_fire_outcomes(self, changes: Sequence[OutcomeChange]) -> list[bool]:
        def update() -> list[bool]:
            applied = []
            for change in changes:
                values: Doc = {"outcome": change.outcome.value, "job_status": change.job_status}
                if change.job_id is not None:
                    values["job_id"] = change.job_id
                if change.reason is not None:
                    values["reason"] = change.reason
                query = {
                    "schedule_id": change.schedule_id,
                    "scheduled_at": to_ns(change.scheduled_at),
                    "outcome": change.expected.value,
                }
                applied.append(self._fires.update_one(query, {"$set": values}).modified_count == 1)
            return applied

        return await self._mongo.run(update) if changes else []

    async def open_fires(self, schedule_ids: Sequence[str] | None = None, limit: int = 1000) -> list[Fire]:
        query: Doc = {"outcome": {"$in": _OPEN}}
        if schedule_ids is not None:
            query["schedule_id"] = {"$in": list(schedule_ids)}
        docs = await self._mongo.run(lambda: list(self._fires.find(query, sort=[("scheduled_at", 1)], limit=limit)))
        return [fire_from_row(doc) for doc in docs]

    async def fires(self, schedule_id: str, limit: int = 100, before: datetime | None = None) -> list[Fire]:
        query: Doc = {"schedule_id": schedule_id}
        if before is not None:
            query["scheduled_at"] = {"$lt": to_ns(before)}
        docs = await self._mongo.run(lambda: list(self._fires.find(query, sort=[("scheduled_at", -1)], limit=limit)))
        return [fire_from_row(doc) for doc in docs]


def _saved_doc(account: str, name: str, version: int, spec: JobSpec, description: str, now: datetime) -> Doc:
    return {
        "account": account,
        "name": name,
        "version": version,
        "spec_json": json.dumps(spec_to_doc(spec)),
        "stdin": Binary(spec.stdin),
        "description": description,
        "created_at": to_ns(now),
    }


def _schedule_doc(schedule: Schedule) -> Doc:
    fire_at, due_at = cursor_ns(schedule.cursor)
    return {
        "_id": schedule.id,
        "account": schedule.account,
        **_spec_fields(schedule.spec),
        "paused": schedule.paused,
        "created_at": to_ns(schedule.created_at),
        "updated_at": to_ns(schedule.updated_at),
        "next_fire_at": fire_at,
        "next_due_at": due_at,
        "lease_owner": "",
        "lease_expires_at": None,
    }


def _spec_fields(spec: ScheduleSpec) -> Doc:
    return {"name": spec.name, "saved_job": spec.saved_job, "spec_json": json.dumps(schedule_spec_to_doc(spec))}


def _schedule(doc: Doc) -> Schedule:
    return schedule_from_row({**doc, "id": doc["_id"]}, doc["spec_json"])


def _fire_doc(fire: Fire) -> Doc:
    return dict(zip(FIRE_COLUMNS, fire_values(fire), strict=True))
