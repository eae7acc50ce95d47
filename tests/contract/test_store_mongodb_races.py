"""MongoDB without transactions: the races its documents cannot rule out (the
JobStore contract on the mongomock double)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from cloudpipe_server.models import JobQuery, Stream
from tests.contract.common import LEASE, T0, claimed_job, out, spec

if TYPE_CHECKING:
    from cloudpipe_server.store.mongodb import MongoJobStore


async def test_mongodb_a_key_stored_by_a_racing_submit_answers_with_that_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """A standalone server has no transaction around look-up and insert: another submit
    can store a key in between. The unique index catches it (mongomock double)."""
    import mongomock

    client: Any = mongomock.MongoClient()
    mine, racer = (_job_store(client) for _ in range(2))
    await mine.initialize()
    await racer.initialize()
    insert = mine._insert

    def racer_first(documents: list[dict[str, Any]], session: Any) -> list[int]:
        racer._submit("alice", [spec("the racer's", idempotency_key="k2")], T0)  # after our look-up
        return insert(documents, session)

    monkeypatch.setattr(mine, "_insert", racer_first)
    batch = [spec("a", idempotency_key="k1"), spec("b", idempotency_key="k2"), spec("c", idempotency_key="k3")]
    a, b, c, plain = await mine.submit("alice", [*batch, spec("no key")], T0)
    monkeypatch.undo()
    assert (await mine.get(b)).spec.cmd == "the racer's"
    assert await racer.submit("alice", [spec(idempotency_key="k2")], T0) == [b]
    stored = {j.id: j.spec.cmd for j in await mine.list_jobs("alice", JobQuery())}
    assert stored == {a: "a", b: "the racer's", c: "c", plain: "no key"}, "our k2 job was not stored"


async def test_mongodb_append_racing_the_reaper_stores_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lease is lost between the append's check and its insert (mongomock double)."""
    import mongomock
    from mongomock.collection import Collection

    client: Any = mongomock.MongoClient()
    backend = _job_store(client)
    await backend.initialize()
    job_id = await claimed_job(backend, restartable=True)
    insert_many = Collection.insert_many

    def reaped_first(self: Any, documents: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == "job_output":
            backend._reap_expired(T0 + LEASE * 2, 3)
        return insert_many(self, documents, *args, **kwargs)

    monkeypatch.setattr(Collection, "insert_many", reaped_first)
    assert not await backend.append_output(job_id, "d1", [out(0, b"too late")])
    monkeypatch.undo()
    assert client.cloudpipe.job_output.count_documents({}) == 0
    [again] = await backend.claim("d2", T0 + LEASE * 3, LEASE, 1)
    assert again.id == job_id and await backend.read_output(job_id, Stream.STDOUT, 0) == b""


def _job_store(client: Any) -> MongoJobStore:
    """The concrete job store on a mongomock client (the double), its private steps
    patchable."""
    from cloudpipe_server.store.mongodb import MongoDatabase, MongoJobStore

    return MongoJobStore(MongoDatabase("mongodb://mongomock", client=client, transactions=False))
