"""The MongoDB database of the backend (pymongo): one client, shared by the job store,
the schedule store and the secret store, and the database from the store's URL, whether
the server has transactions, and running blocking pymongo code in worker threads with
lost connections mapped to `StoreUnavailable`.

pymongo blocks, so every operation goes through `MongoDatabase.run` (`asyncio.to_thread`),
never on the event loop. Nothing here makes several writes atomic: a store that needs
that takes a session from `client` and uses a transaction when `transactions` says the
server has them (a replica set or a sharded cluster; a standalone server has none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pymongo
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from cloudpipe_server.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")
Doc = dict[str, Any]


class MongoDatabase:
    """Database `database` of the MongoDB server at `url` (default: the database the URL
    names, else "cloudpipe").

    `client` injects an already-built client (then never closed here); `transactions`
    forces transactions on or off (default: ask the server). `name` names the store in
    the error of a closed database ("the {name} is closed (or not initialized)")."""

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        client: pymongo.MongoClient[Doc] | None = None,
        transactions: bool | None = None,
        name: str = "MongoDB store",
    ) -> None:
        self._url = url
        self._database = database
        self._client = client
        self._owns_client = client is None
        self._transactions = transactions
        self._name = name

    async def connect(self, setup: Callable[[Database[Doc]], None]) -> None:
        """In a worker thread: create the client (unless one was injected or is open:
        another store on this database connected it), settle the database name, ask the
        server whether it has transactions (unless forced), then run `setup(db)` (the
        store's indexes and initial documents; it must be idempotent: every server
        start runs it).

        Raises `StoreUnavailable` when the server cannot be reached."""

        def connect() -> None:
            if self._client is None:
                self._client = pymongo.MongoClient(self._url)
            if self._database is None:
                self._database = self._client.get_default_database("cloudpipe").name
            if self._transactions is None:
                hello = self._client.admin.command("hello")
                self._transactions = "setName" in hello or hello.get("msg") == "isdbgrid"
            setup(self.db)

        await self.run(connect)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a worker thread, and its result. Atomic only as far as
        `fn` makes it so.

        Raises `StoreUnavailable` for `pymongo.errors.ConnectionFailure` (a lost or
        refused connection, no server selected in time); whatever else `fn` raises
        (`StoreUnavailable` from `db` on a closed database, `DuplicateKeyError`,
        `OperationFailure`...) goes through unchanged."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ConnectionFailure as exc:
            raise StoreUnavailable(f"MongoDB store error: {exc}") from exc

    @property
    def db(self) -> Database[Doc]:
        """The database. Raises `StoreUnavailable` when closed or not yet connected."""
        if self._client is None or self._database is None:
            raise StoreUnavailable(f"the {self._name} is closed (or not initialized)")
        return self._client[self._database]

    @property
    def client(self) -> pymongo.MongoClient[Doc]:
        """The client, for sessions. Raises `StoreUnavailable` when closed or not yet connected."""
        if self._client is None or self._database is None:
            raise StoreUnavailable(f"the {self._name} is closed (or not initialized)")
        return self._client

    @property
    def transactions(self) -> bool:
        """Whether writes of several documents can take a transaction (false until connected)."""
        return bool(self._transactions)

    async def close(self) -> None:
        """Forget the client, closing it unless it was injected; later operations raise
        `StoreUnavailable`. Closing a closed database does nothing."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await asyncio.to_thread(client.close)
