"""The SQLite account store: versioned schema, data that survives a reopen, keys found
by hash only, cascades on account deletion."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudpipe_auth.credentials import digest, new_api_key
from cloudpipe_auth.sqlite import MIGRATIONS, SqliteAccountStore, open_account_store
from cloudpipe_server.errors import AlreadyExists, InvalidArgument, NotFound

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_the_schema_is_versioned_and_data_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "auth.db"
    store = SqliteAccountStore(path)
    await store.initialize()
    await store.create_account("alice", "hash", NOW)
    secret = new_api_key()
    await store.add_key("alice", "key_1", "laptop", digest(secret), NOW)
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        stored = conn.execute("SELECT key_hash FROM api_keys").fetchone()[0]
    assert stored == digest(secret) and secret not in stored
    again = SqliteAccountStore(path)
    await again.initialize()  # migrations are idempotent
    key = await again.find_key(digest(secret))
    assert key is not None and (key.account, key.name, key.created_at) == ("alice", "laptop", NOW)
    await again.close()


async def test_accounts_keys_and_sessions(tmp_path: Path) -> None:
    store = open_account_store(f"sqlite:///{tmp_path / 'a.db'}")
    await store.initialize()
    await store.create_account("alice", "hash", NOW)
    with pytest.raises(AlreadyExists):
        await store.create_account("alice", "other", NOW)
    with pytest.raises(NotFound):
        await store.add_key("nobody", "key_x", "x", "h", NOW)
    await store.add_key("alice", "key_1", "one", "h1", NOW)
    await store.add_key("alice", "key_2", "two", "h2", NOW + timedelta(seconds=1))
    assert [k.id for k in await store.list_keys("alice")] == ["key_1", "key_2"]
    await store.touch_key("key_1", NOW + timedelta(minutes=5))
    touched = await store.find_key("h1")
    assert touched is not None and touched.last_used_at == NOW + timedelta(minutes=5)
    assert not await store.delete_key("bob", key_id="key_1")
    assert await store.delete_key("alice", key_hash="h2")
    await store.update_account("alice", NOW, disabled=True)
    assert await store.find_key("h1") is None  # a disabled account's keys do not validate
    await store.update_account("alice", NOW, disabled=False)
    await store.add_session("s1", "alice", NOW + timedelta(hours=1))
    assert await store.find_session("s1", NOW) == "alice"
    assert await store.find_session("s1", NOW + timedelta(hours=2)) is None  # expired, and deleted
    await store.delete_account("alice", NOW)
    assert await store.find_key("h1") is None and await store.list_keys("alice") == []
    with pytest.raises(NotFound):
        await store.delete_account("alice", NOW)
    await store.close()


def test_only_sqlite_urls_are_supported() -> None:
    with pytest.raises(InvalidArgument):
        open_account_store("postgresql://x/y")
