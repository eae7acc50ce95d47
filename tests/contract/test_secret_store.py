"""The SecretStore contract, run against every backend that can run here (the same
`stores` fixture, backends and MongoDB double as the JobStore contract)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudpipe_server.store import SecretStore, StoredSecret, Stores
from tests.contract.backends import PROCESS_BACKENDS, mongomock_stores, open_shared, shared_target
from tests.contract.common import T0

SECOND = timedelta(seconds=1)


@pytest.fixture
def store(stores: Stores) -> SecretStore:
    """Here, the secret store of conftest's `stores` (the job store elsewhere)."""
    return stores.secrets


def failing_on(call: int) -> Callable[[bytes], bytes]:
    """A transform that rewrites ciphertexts until its `call`-th call, which raises."""
    calls = 0

    def transform(ciphertext: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls == call:
            raise ValueError("cannot decrypt")
        return b"new:" + ciphertext

    return transform


async def values(store: SecretStore, account: str) -> dict[str, bytes]:
    return {s.name: s.ciphertext for s in await store.list_secrets(account)}


# -- put, list, get, delete -----------------------------------------------------------------


async def test_a_put_secret_is_listed_and_got_by_name(store: SecretStore) -> None:
    put = await store.put_secret("alice", "token", b"\x01cipher", T0)
    assert put == StoredSecret("token", b"\x01cipher", T0, T0)
    assert await store.list_secrets("alice") == [put]
    assert await store.get_secrets("alice", ["token"]) == {"token": put}


async def test_secrets_are_listed_by_name_in_code_point_order(store: SecretStore) -> None:
    for name in ("db_url", "API_KEY", "api_key", "Zeta", "émoji", "a"):
        await store.put_secret("alice", name, name.encode(), T0)
    assert [s.name for s in await store.list_secrets("alice")] == ["API_KEY", "Zeta", "a", "api_key", "db_url", "émoji"]


async def test_postgres_lists_secrets_in_code_point_order_whatever_the_database_locale(
    postgres_server_url: str,
) -> None:
    """In a database whose own collation sorts "a" before "API_KEY" (ICU en-US), names
    still list as on the other backends: they compare bytewise."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from tests.contract.backends import postgres

    name = f"cloudpipe_test_icu_{os.getpid()}"
    create = "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL(create).format(sql.Identifier(name)))  # type: ignore[arg-type]
    stores = postgres(make_conninfo(postgres_server_url, dbname=name))
    try:
        await stores.initialize()
        for secret in ("api_key", "Zeta", "a", "API_KEY"):
            await stores.secrets.put_secret("alice", secret, b"x", T0)
        assert [s.name for s in await stores.secrets.list_secrets("alice")] == ["API_KEY", "Zeta", "a", "api_key"]
    finally:
        await stores.close()
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def test_replacing_a_secret_keeps_created_at_and_updates_the_rest(store: SecretStore) -> None:
    await store.put_secret("alice", "token", b"old", T0)
    replaced = await store.put_secret("alice", "token", b"new", T0 + SECOND)
    assert replaced == StoredSecret("token", b"new", T0, T0 + SECOND)
    assert await store.list_secrets("alice") == [replaced]
    assert await store.get_secrets("alice", ["token"]) == {"token": replaced}


async def test_accounts_keep_separate_secrets_of_one_name(store: SecretStore) -> None:
    alices = await store.put_secret("alice", "token", b"alice's", T0)
    bobs = await store.put_secret("bob", "token", b"bob's", T0 + SECOND)
    await store.put_secret("bob", "only-bob", b"x", T0)
    assert await store.list_secrets("alice") == [alices]
    assert await store.get_secrets("alice", ["token", "only-bob"]) == {"token": alices}
    assert await store.get_secrets("bob", ["token"]) == {"token": bobs}
    assert await store.list_secrets("carol") == [] and await store.get_secrets("carol", ["token"]) == {}
    assert not await store.delete_secret("alice", "only-bob")
    assert await store.delete_secret("alice", "token")
    assert await store.list_secrets("alice") == []
    assert await store.get_secrets("bob", ["token", "only-bob"]) == {
        "token": bobs,
        "only-bob": StoredSecret("only-bob", b"x", T0, T0),
    }


async def test_delete_says_whether_the_secret_existed(store: SecretStore) -> None:
    await store.put_secret("alice", "token", b"x", T0)
    assert await store.delete_secret("alice", "token")
    assert not await store.delete_secret("alice", "token")
    assert not await store.delete_secret("alice", "never-there")
    assert await store.get_secrets("alice", ["token"]) == {}
    again = await store.put_secret("alice", "token", b"y", T0 + SECOND)  # a new secret: created anew
    assert again == StoredSecret("token", b"y", T0 + SECOND, T0 + SECOND)


async def test_get_secrets_leaves_out_the_names_the_account_lacks(store: SecretStore) -> None:
    a = await store.put_secret("alice", "a", b"1", T0)
    b = await store.put_secret("alice", "b", b"2", T0)
    assert await store.get_secrets("alice", ["a", "missing", "a", "b"]) == {"a": a, "b": b}
    assert await store.get_secrets("alice", ["missing"]) == {}
    assert await store.get_secrets("alice", []) == {}


# -- bytes ------------------------------------------------------------------------------------

CIPHERTEXTS = {
    "empty": b"",
    "nul": b"\x00",
    "nuls-around": b"\x00\x00ab\x00\xff\xfe\x00",
    "every-byte": bytes(range(256)),
    "not-utf8": b"\xc3\x28\xa0\xa1\xed\xa0\x80",
    "64KiB-random": os.urandom(64 * 1024),
    "64KiB-nul": b"\x00" * (64 * 1024),
}


async def test_ciphertext_bytes_round_trip_exactly(store: SecretStore) -> None:
    for name, ciphertext in CIPHERTEXTS.items():
        assert (await store.put_secret("alice", name, ciphertext, T0)).ciphertext == ciphertext
    listed = await store.list_secrets("alice")
    got = await store.get_secrets("alice", list(CIPHERTEXTS))
    assert {s.name: s.ciphertext for s in listed} == CIPHERTEXTS
    assert {name: s.ciphertext for name, s in got.items()} == CIPHERTEXTS
    assert all(type(s.ciphertext) is bytes for s in [*listed, *got.values()])
    for name, ciphertext in CIPHERTEXTS.items():  # a replacement round-trips too
        await store.put_secret("alice", name, ciphertext[::-1] + b"\x00", T0 + SECOND)
    assert await values(store, "alice") == {name: c[::-1] + b"\x00" for name, c in CIPHERTEXTS.items()}


# -- re-encryption ----------------------------------------------------------------------------


async def test_reencrypt_rewrites_the_secrets_of_every_account(store: SecretStore) -> None:
    await store.put_secret("alice", "a", b"\x00one", T0)
    await store.put_secret("alice", "b", b"two", T0)
    await store.put_secret("bob", "a", b"three", T0 + SECOND)
    assert await store.reencrypt_secrets(lambda ciphertext: b"new:" + ciphertext) == 3
    assert await values(store, "alice") == {"a": b"new:\x00one", "b": b"new:two"}
    assert await values(store, "bob") == {"a": b"new:three"}
    [bobs] = await store.list_secrets("bob")
    assert (bobs.created_at, bobs.updated_at) == (T0 + SECOND, T0 + SECOND), "only the encryption changed"


async def test_reencrypt_of_no_secrets_rewrites_none(store: SecretStore) -> None:
    assert await store.reencrypt_secrets(failing_on(1)) == 0


async def test_reencrypt_changes_nothing_when_the_transform_raises(store: SecretStore) -> None:
    await store.put_secret("alice", "a", b"one", T0)
    await store.put_secret("alice", "b", b"two", T0)
    await store.put_secret("bob", "c", b"three", T0)
    with pytest.raises(ValueError, match="cannot decrypt"):
        await store.reencrypt_secrets(failing_on(2))
    assert await values(store, "alice") == {"a": b"one", "b": b"two"}
    assert await values(store, "bob") == {"c": b"three"}
    await store.put_secret("alice", "a", b"after", T0 + SECOND)  # nothing is left locked
    assert await store.reencrypt_secrets(failing_on(0)) == 3
    assert await values(store, "alice") == {"a": b"new:after", "b": b"new:two"}


# -- concurrency ------------------------------------------------------------------------------


async def test_concurrent_puts_of_one_name_leave_one_secret(store: SecretStore) -> None:
    puts = await asyncio.gather(
        *(store.put_secret("alice", "token", f"value {n}".encode(), T0 + n * SECOND) for n in range(20))
    )
    assert [p.ciphertext for p in puts] == [f"value {n}".encode() for n in range(20)]
    [kept] = await store.list_secrets("alice")
    assert kept.ciphertext in {p.ciphertext for p in puts}
    assert kept.created_at in {T0 + n * SECOND for n in range(20)}


@pytest.mark.parametrize("kind", PROCESS_BACKENDS)
async def test_concurrent_puts_of_one_name_from_several_servers_leave_one_secret(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Several store objects on one database (each its own connection or pool), as
    servers sharing it have, start together and put the same names at once."""
    target = shared_target(kind, request, tmp_path)
    servers = [open_shared(kind, target) for _ in range(4)]
    await asyncio.gather(*(server.initialize() for server in servers))  # the schema is made once
    try:
        await asyncio.gather(
            *(
                server.secrets.put_secret("alice", f"name {k}", f"server {i}".encode(), T0 + i * SECOND)
                for k in range(5)
                for i, server in enumerate(servers)
            )
        )
        kept = await servers[0].secrets.list_secrets("alice")
        assert [s.name for s in kept] == [f"name {k}" for k in range(5)]
        assert {s.ciphertext for s in kept} <= {f"server {i}".encode() for i in range(4)}
    finally:
        for server in servers:
            await server.close()


# -- MongoDB transactions, on the double ----------------------------------------------------


class RecordingSession:
    """A session double for mongomock (which has none): `with_transaction` runs the
    callback once with it. Nothing is rolled back; what is proven is that re-encryption
    takes the transaction and writes only after every transform has run."""

    def __init__(self) -> None:
        self.transactions = 0

    def __enter__(self) -> RecordingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def with_transaction(self, callback: Callable[[RecordingSession], Any]) -> Any:
        self.transactions += 1
        return callback(self)


@contextmanager
def recording_sessions(client: Any) -> Iterator[RecordingSession]:
    """`client.start_session()` gives one RecordingSession; mongomock's collection calls
    accept it (and ignore it)."""
    from mongomock.collection import Collection

    session = RecordingSession()
    names = ("find", "update_one")
    originals = {name: getattr(Collection, name) for name in names}

    def in_session(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, session: RecordingSession | None = None, **kwargs: Any) -> Any:
            return original(*args, **kwargs)

        return call

    client.start_session = lambda: session
    for name, original in originals.items():
        setattr(Collection, name, in_session(original))
    try:
        yield session
    finally:
        for name, original in originals.items():
            setattr(Collection, name, original)


async def test_mongodb_reencrypt_takes_one_transaction_when_the_server_has_them() -> None:
    import mongomock

    client: Any = mongomock.MongoClient()
    stores = mongomock_stores(client, transactions=True)
    await stores.initialize()
    await stores.secrets.put_secret("alice", "a", b"one", T0)
    await stores.secrets.put_secret("bob", "b", b"two", T0)
    with recording_sessions(client) as session:
        with pytest.raises(ValueError, match="cannot decrypt"):
            await stores.secrets.reencrypt_secrets(failing_on(2))
        assert await values(stores.secrets, "alice") == {"a": b"one"}
        assert await stores.secrets.reencrypt_secrets(failing_on(0)) == 2
    assert session.transactions == 2
    assert await values(stores.secrets, "alice") == {"a": b"new:one"}
    assert await values(stores.secrets, "bob") == {"b": b"new:two"}
    await stores.close()


async def test_mongodb_reencrypt_without_transactions_leaves_a_value_put_meanwhile() -> None:
    """Without transactions a put can land between the read and the rewrite: the new
    value stays as put, never replaced by a transform of the old one (mongomock double)."""
    import mongomock

    client: Any = mongomock.MongoClient()
    stores = mongomock_stores(client)
    await stores.initialize()
    await stores.secrets.put_secret("alice", "a", b"one", T0)
    await stores.secrets.put_secret("alice", "b", b"two", T0)

    def put_meanwhile(ciphertext: bytes) -> bytes:
        if ciphertext == b"two":  # another server's put, between the read and the rewrite
            client.cloudpipe.secrets.update_one({"account": "alice", "name": "b"}, {"$set": {"ciphertext": b"put"}})
        return b"new:" + ciphertext

    assert await stores.secrets.reencrypt_secrets(put_meanwhile) == 1
    assert await values(stores.secrets, "alice") == {"a": b"new:one", "b": b"put"}
    await stores.close()
