"""SQLite account store: one file, WAL mode, schema version in `PRAGMA user_version`.

Like the job store, every operation runs in a worker thread on one connection guarded
by a lock, and writes use `BEGIN IMMEDIATE` (`cloudpipe_common.sqlite`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudpipe_auth.store import Account, AccountState, AccountStore, ApiKey, RetiredName
from cloudpipe_common.errors import AlreadyExists, InvalidArgument, NotFound
from cloudpipe_common.sqlite import SqliteDatabase
from cloudpipe_common.timestamps import from_ns, to_ns

MIGRATIONS: list[str] = [
    # 1: accounts, key hashes, session hashes. `accounts.admin` is unused (the admin API
    # takes a token) and stays, since a migration never changes.
    """
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
    );
    CREATE INDEX api_keys_account ON api_keys (account, created_at);
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_account ON sessions (account);
    """,
    # 2: names of deleted accounts. Jobs, saved jobs and schedules are keyed by account
    # name in the job store, so a deleted account's name is never registered again: a
    # new owner would read the old account's jobs.
    """
    CREATE TABLE deleted_accounts (
        name TEXT PRIMARY KEY,
        deleted_at INTEGER NOT NULL
    );
    """,
]


def open_account_store(url: str) -> AccountStore:
    """The account store for a URL; only `sqlite:///PATH` (or `sqlite:///:memory:`) so far."""
    if url.startswith("sqlite:///"):
        return SqliteAccountStore(url[len("sqlite:///") :] if url != "sqlite:///:memory:" else ":memory:")
    raise InvalidArgument(f"CLOUDPIPE_AUTH_STORE_URL: unsupported URL {url.split(':')[0]!r}; use sqlite:///PATH")


class SqliteAccountStore(AccountStore):
    def __init__(self, path: str | Path) -> None:
        self._db = SqliteDatabase(path, name="account store", error_prefix="account store error")

    async def initialize(self) -> None:
        await self._db.connect(MIGRATIONS)

    async def close(self) -> None:
        await self._db.close()

    # -- accounts -----------------------------------------------------------------------

    async def create_account(self, name: str, password_hash: str, now: datetime) -> Account:
        def insert(conn: sqlite3.Connection) -> Account:
            if conn.execute("SELECT 1 FROM deleted_accounts WHERE name = ?", (name,)).fetchone() is not None:
                raise RetiredName(f"The account name {name!r} belonged to a deleted account and cannot be reused.")
            try:
                conn.execute(
                    "INSERT INTO accounts (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (name, password_hash, to_ns(now), to_ns(now)),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"account {name!r} exists") from None
            return _account(conn, name)

        return await self._db.run(insert, write=True)

    async def get_account(self, name: str) -> Account | None:
        def get(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
            return None if row is None else _row_to_account(row)

        return await self._db.run(get)

    async def account_state(self, name: str) -> AccountState | None:
        def state(conn: sqlite3.Connection) -> AccountState | None:
            row = conn.execute("SELECT disabled FROM accounts WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return AccountState.DISABLED if row["disabled"] else AccountState.ACTIVE
            gone = conn.execute("SELECT 1 FROM deleted_accounts WHERE name = ?", (name,)).fetchone()
            return None if gone is None else AccountState.DELETED

        return await self._db.run(state)

    async def list_accounts(self) -> list[Account]:
        def rows(conn: sqlite3.Connection) -> list[Account]:
            return [_row_to_account(r) for r in conn.execute("SELECT * FROM accounts ORDER BY name")]

        return await self._db.run(rows)

    async def update_account(
        self, name: str, now: datetime, *, password_hash: str | None = None, disabled: bool | None = None
    ) -> Account:
        def update(conn: sqlite3.Connection) -> Account:
            sets, args = ["updated_at = ?"], [to_ns(now)]
            if password_hash is not None:
                sets.append("password_hash = ?")
                args.append(password_hash)  # type: ignore[arg-type]
            if disabled is not None:
                sets.append("disabled = ?")
                args.append(int(disabled))
            cursor = conn.execute(f"UPDATE accounts SET {', '.join(sets)} WHERE name = ?", (*args, name))
            if cursor.rowcount != 1:
                raise NotFound(f"no account {name!r}")
            return _account(conn, name)

        return await self._db.run(update, write=True)

    async def delete_account(self, name: str, now: datetime) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount != 1:
                raise NotFound(f"no account {name!r}")
            conn.execute("INSERT INTO deleted_accounts (name, deleted_at) VALUES (?, ?)", (name, to_ns(now)))

        await self._db.run(delete, write=True)

    # -- keys ---------------------------------------------------------------------------

    async def add_key(self, account: str, key_id: str, name: str, key_hash: str, now: datetime) -> ApiKey:
        def insert(conn: sqlite3.Connection) -> ApiKey:
            if conn.execute("SELECT 1 FROM accounts WHERE name = ?", (account,)).fetchone() is None:
                raise NotFound(f"no account {account!r}")
            try:
                conn.execute(
                    "INSERT INTO api_keys (id, account, name, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    (key_id, account, name, key_hash, to_ns(now)),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists("key id or hash exists") from None
            return ApiKey(key_id, account, name, now)

        return await self._db.run(insert, write=True)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        def find(conn: sqlite3.Connection) -> ApiKey | None:
            row = conn.execute(
                "SELECT k.* FROM api_keys k JOIN accounts a ON a.name = k.account"
                " WHERE k.key_hash = ? AND a.disabled = 0",
                (key_hash,),
            ).fetchone()
            return None if row is None else _row_to_key(row)

        return await self._db.run(find)

    async def list_keys(self, account: str) -> list[ApiKey]:
        def rows(conn: sqlite3.Connection) -> list[ApiKey]:
            query = "SELECT * FROM api_keys WHERE account = ? ORDER BY created_at, id"
            return [_row_to_key(r) for r in conn.execute(query, (account,))]

        return await self._db.run(rows)

    async def delete_key(self, account: str, *, key_id: str | None = None, key_hash: str | None = None) -> bool:
        column, value = ("id", key_id) if key_id is not None else ("key_hash", key_hash)
        if value is None:
            raise InvalidArgument("delete_key needs key_id or key_hash")

        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(f"DELETE FROM api_keys WHERE account = ? AND {column} = ?", (account, value))
            return cursor.rowcount == 1

        return await self._db.run(delete, write=True)

    async def delete_keys(self, account: str) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM api_keys WHERE account = ?", (account,)).rowcount

        return await self._db.run(delete, write=True)

    async def touch_key(self, key_id: str, now: datetime) -> None:
        def touch(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (to_ns(now), key_id))

        await self._db.run(touch, write=True)

    # -- sessions -------------------------------------------------------------------------

    async def add_session(self, token_hash: str, account: str, expires_at: datetime) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO sessions (token_hash, account, expires_at) VALUES (?, ?, ?)",
                (token_hash, account, to_ns(expires_at)),
            )

        await self._db.run(insert, write=True)

    async def find_session(self, token_hash: str, now: datetime) -> str | None:
        def find(conn: sqlite3.Connection) -> str | None:
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (to_ns(now),))
            row = conn.execute(
                "SELECT s.account FROM sessions s JOIN accounts a ON a.name = s.account"
                " WHERE s.token_hash = ? AND a.disabled = 0",
                (token_hash,),
            ).fetchone()
            return None if row is None else str(row["account"])

        return await self._db.run(find, write=True)

    async def delete_sessions(self, account: str, *, token_hash: str | None = None) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if token_hash is None:
                conn.execute("DELETE FROM sessions WHERE account = ?", (account,))
            else:
                conn.execute("DELETE FROM sessions WHERE account = ? AND token_hash = ?", (account, token_hash))

        await self._db.run(delete, write=True)


def _account(conn: sqlite3.Connection, name: str) -> Account:
    return _row_to_account(conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone())


def _time(value: Any) -> datetime:
    moment = from_ns(value)
    assert moment is not None
    return moment


def _row_to_account(row: sqlite3.Row) -> Account:
    return Account(
        name=row["name"],
        password_hash=row["password_hash"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        disabled=bool(row["disabled"]),
    )


def _row_to_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        account=row["account"],
        name=row["name"],
        created_at=_time(row["created_at"]),
        last_used_at=from_ns(row["last_used_at"]),
    )
