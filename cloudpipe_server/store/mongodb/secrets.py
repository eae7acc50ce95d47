"""MongoDB secret store (pymongo, on the client it shares with the job store: the
backend's one `database.MongoDatabase`; every call runs in a worker thread).

One document per secret in `secrets`, `{account, name, ciphertext, created_at,
updated_at}` (times as int64 nanoseconds), with a unique index on (account, name)
(`schema.setup_secrets`, run at every start like the other stores' index setup: MongoDB
has no schema version to migrate). A put is one upserting `find_one_and_update`
(`$setOnInsert` keeps `created_at`), atomic on one document: of concurrent puts of one
name each replaces the value whole and the unique index keeps one document. (A server
may answer a racing upsert with a duplicate-key error; the put is then tried again,
once, and finds the document.)

Re-encryption reads every document and computes every new ciphertext before its first
write, so a transform that raises changes nothing. The writes take a transaction when
the server has them (replica set, sharded cluster), as `submit` and `record_fires` do;
the transform may then run again for a row when the driver retries the transaction.
Without transactions, honestly: each document is rewritten on the condition that its
ciphertext is still the one read, so a value put meanwhile is never overwritten by a
transform of the old one (it is left as put, and not counted); a secret created after
the read is not rewritten; and a connection lost halfway leaves the documents written
so far rewritten (a transform that recognises its own output, by a key id in the
ciphertext, makes running it again safe). It keeps the documents' times: the values did
not change, only their encryption.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bson import Binary
from pymongo import ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from cloudpipe_server.store._shared import secret_from_row, to_ns
from cloudpipe_server.store.base import SecretStore, StoredSecret
from cloudpipe_server.store.mongodb.database import Doc, MongoDatabase
from cloudpipe_server.store.mongodb.schema import setup_secrets

_FIELDS = {"_id": 0, "name": 1, "ciphertext": 1, "created_at": 1, "updated_at": 1}


class MongoSecretStore(SecretStore):
    """`SecretStore` on the MongoDB database `mongo`, whose client the job store shares."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    @property
    def _secrets(self) -> Collection[Doc]:
        return self._mongo.db["secrets"]

    async def initialize(self) -> None:
        await self._mongo.connect(setup_secrets)

    async def put_secret(self, account: str, name: str, ciphertext: bytes, now: datetime) -> StoredSecret:
        def upsert() -> Doc | None:
            return self._secrets.find_one_and_update(
                {"account": account, "name": name},
                {
                    "$set": {"ciphertext": Binary(bytes(ciphertext)), "updated_at": to_ns(now)},
                    "$setOnInsert": {"created_at": to_ns(now)},
                },
                projection=_FIELDS,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )

        def put() -> Doc:
            try:
                doc = upsert()
            except DuplicateKeyError:  # a racing put inserted it first: now there is one to update
                doc = upsert()
            assert doc is not None  # upserted
            return doc

        return secret_from_row(await self._mongo.run(put))

    async def list_secrets(self, account: str) -> list[StoredSecret]:
        query = {"account": account}
        docs = await self._mongo.run(lambda: list(self._secrets.find(query, _FIELDS, sort=[("name", 1)])))
        return [secret_from_row(doc) for doc in docs]

    async def get_secrets(self, account: str, names: Sequence[str]) -> dict[str, StoredSecret]:
        if not names:
            return {}
        query = {"account": account, "name": {"$in": sorted(set(names))}}
        docs = await self._mongo.run(lambda: list(self._secrets.find(query, _FIELDS)))
        return {doc["name"]: secret_from_row(doc) for doc in docs}

    async def delete_secret(self, account: str, name: str) -> bool:
        result = await self._mongo.run(self._secrets.delete_one, {"account": account, "name": name})
        return result.deleted_count == 1

    async def reencrypt_secrets(self, transform: Callable[[bytes], bytes]) -> int:
        def rewrite(session: ClientSession | None) -> int:
            docs = list(self._secrets.find({}, {"ciphertext": 1}, sort=[("account", 1), ("name", 1)], session=session))
            news = [Binary(bytes(transform(bytes(doc["ciphertext"])))) for doc in docs]  # all before the first write
            rewritten = 0
            for doc, new in zip(docs, news, strict=True):
                where: Doc = {"_id": doc["_id"]}
                if session is None:  # unless still as read, a put replaced it meanwhile: keep that
                    where["ciphertext"] = doc["ciphertext"]
                result = self._secrets.update_one(where, {"$set": {"ciphertext": new}}, session=session)
                rewritten += result.matched_count
            return rewritten

        def in_transaction() -> int:
            with self._mongo.client.start_session() as session:
                return session.with_transaction(rewrite)

        return await self._mongo.run(in_transaction if self._mongo.transactions else lambda: rewrite(None))
