"""MongoDB quota store (pymongo, on the client it shares with the job store: the
backend's one `database.MongoDatabase`; every call runs in a worker thread).

One document per account that has an override in `account_quotas`, `{_id: account,
max_queued, max_running, updated_at}` (a missing value null, `updated_at` int64
nanoseconds); `_id` is unique already, so there is no index to set up. A set is one
`replace_one(upsert=True)` (or one `delete_one` when both values go back to the
default), atomic on the one document: of concurrent sets each replaces it whole. The job
store's claim reads the running overrides (`running_overrides`) once per claim."""

from __future__ import annotations

from datetime import datetime

from pymongo.collection import Collection
from pymongo.database import Database

from cloudpipe_server.store._shared import from_ns, to_ns
from cloudpipe_server.store.base import AccountQuota, QuotaStore
from cloudpipe_server.store.mongodb.database import Doc, MongoDatabase

COLLECTION = "account_quotas"


def setup_quotas(db: Database[Doc]) -> None:
    """Nothing to create: one document per account, keyed by `_id`."""


def running_overrides(db: Database[Doc]) -> dict[str, int]:
    """The accounts whose running limit is overridden, and that limit (0: none)."""
    found = db[COLLECTION].find({"max_running": {"$ne": None}}, {"max_running": 1})
    return {doc["_id"]: int(doc["max_running"]) for doc in found}


def _quota(doc: Doc) -> AccountQuota:
    return AccountQuota(doc["_id"], doc.get("max_queued"), doc.get("max_running"), from_ns(doc["updated_at"]))


class MongoQuotaStore(QuotaStore):
    """`QuotaStore` on the MongoDB database `mongo`, whose client the job store shares."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    @property
    def _quotas(self) -> Collection[Doc]:
        return self._mongo.db[COLLECTION]

    async def initialize(self) -> None:
        await self._mongo.connect(setup_quotas)

    async def get_quota(self, account: str) -> AccountQuota:
        def read() -> AccountQuota:
            doc = self._quotas.find_one({"_id": account})
            return AccountQuota(account) if doc is None else _quota(doc)

        return await self._mongo.run(read)

    async def set_quota(
        self, account: str, max_queued: int | None, max_running: int | None, now: datetime
    ) -> AccountQuota:
        if max_queued is None and max_running is None:
            await self.delete_quota(account)
            return AccountQuota(account)
        doc = {"max_queued": max_queued, "max_running": max_running, "updated_at": to_ns(now)}
        await self._mongo.run(lambda: self._quotas.replace_one({"_id": account}, doc, upsert=True))
        return AccountQuota(account, max_queued, max_running, now)

    async def list_quotas(self) -> list[AccountQuota]:
        return await self._mongo.run(lambda: [_quota(doc) for doc in self._quotas.find().sort("_id", 1)])

    async def delete_quota(self, account: str) -> bool:
        return await self._mongo.run(lambda: self._quotas.delete_one({"_id": account}).deleted_count == 1)
