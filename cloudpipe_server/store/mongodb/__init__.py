"""The MongoDB backend (pymongo, blocking, run in worker threads): every store on one
database through one client (`database`). Modules: `database` (client, threads, error
mapping), `schema` (job documents and every store's indexes), `jobs`, `output` and
`dependencies` (the job store), `schedules`, `secrets`."""

from __future__ import annotations

import pymongo

from cloudpipe_server.store.base import Stores
from cloudpipe_server.store.mongodb.database import Doc, MongoDatabase
from cloudpipe_server.store.mongodb.jobs import MongoJobStore
from cloudpipe_server.store.mongodb.quotas import MongoQuotaStore
from cloudpipe_server.store.mongodb.schedules import MongoScheduleStore
from cloudpipe_server.store.mongodb.secrets import MongoSecretStore


def open_stores(
    url: str,
    *,
    database: str | None = None,
    client: pymongo.MongoClient[Doc] | None = None,
    transactions: bool | None = None,
) -> Stores:
    """Every store on database `database` of the MongoDB server at `url` (default: the
    database the URL names, else "cloudpipe"), through one client.

    `client` injects an already-built client (then never closed here); `transactions`
    forces transactions on or off (default: ask the server)."""
    mongo = MongoDatabase(url, database=database, client=client, transactions=transactions)
    return Stores(
        MongoJobStore(mongo), MongoScheduleStore(mongo), MongoSecretStore(mongo), mongo, MongoQuotaStore(mongo)
    )


__all__ = ["MongoDatabase", "MongoJobStore", "MongoQuotaStore", "MongoScheduleStore", "MongoSecretStore", "open_stores"]
