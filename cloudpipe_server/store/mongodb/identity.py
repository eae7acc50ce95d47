"""Server identities in the MongoDB store: one document per CLOUDPIPE_SERVER_ID in
`server_identities`, `{_id: server id, holder, expires_at}` (see
`JobStore.hold_identity`). The take is one conditional upsert on `_id`: when the
document exists but may not be taken, the upsert's insert fails on the `_id` index, so
of concurrent takers one wins."""

from __future__ import annotations

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from cloudpipe_server.store.mongodb.database import Doc


def hold(coll: Collection[Doc], server_id: str, holder: str, now: int, until: int, replacing: str) -> str:
    takeable = [{"holder": {"$in": [holder, replacing or holder]}}, {"expires_at": {"$lte": now}}]
    try:
        coll.update_one(
            {"_id": server_id, "$or": takeable}, {"$set": {"holder": holder, "expires_at": until}}, upsert=True
        )
    except DuplicateKeyError:
        pass  # held by someone else: nothing changed
    doc = coll.find_one({"_id": server_id})
    assert doc is not None
    return str(doc["holder"])


def release(coll: Collection[Doc], server_id: str, holder: str) -> None:
    coll.delete_one({"_id": server_id, "holder": holder})
