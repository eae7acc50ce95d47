"""The account store contract of the auth service: accounts with password hashes, API
keys (only their SHA-256 hashes are stored), and login sessions (hashed too).

One ABC; the SQLite backend (`sqlite.py`) is the default, chosen by URL in the same
scheme as the job store (`sqlite:///PATH`). Schema versioned in the backend.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from datetime import datetime

from cloudpipe_common.errors import AlreadyExists


class AccountState(enum.Enum):
    """Where a name stands. DELETED names are kept for ever (a tombstone): they can never
    be registered again, since jobs, saved jobs and schedules are keyed by name."""

    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


class RetiredName(AlreadyExists):
    """The name belonged to a deleted account: it is never registered again (HTTP 409)."""


@dataclass(frozen=True)
class Account:
    """An account of the auth service. `password_hash` is an argon2 encoded hash."""

    name: str
    password_hash: str
    created_at: datetime
    updated_at: datetime
    disabled: bool = False


@dataclass(frozen=True)
class ApiKey:
    """What is known about an API key; the key itself is never stored."""

    id: str
    account: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None


class AccountStore(abc.ABC):
    """Durable storage of accounts, key hashes and session hashes. Coroutines, safe to
    call concurrently. Every method raises StoreUnavailable when the store fails."""

    @abc.abstractmethod
    async def initialize(self) -> None:
        """Create or migrate the schema. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    @abc.abstractmethod
    async def create_account(self, name: str, password_hash: str, now: datetime) -> Account:
        """Insert an account. Raises AlreadyExists when the name is taken or belonged to
        a deleted account (atomically with the insert)."""

    @abc.abstractmethod
    async def get_account(self, name: str) -> Account | None:
        """The account, or None."""

    @abc.abstractmethod
    async def account_state(self, name: str) -> AccountState | None:
        """ACTIVE, DISABLED, DELETED (the name belonged to a deleted account), or None
        for a name never registered."""

    @abc.abstractmethod
    async def list_accounts(self) -> list[Account]:
        """Every account, by name."""

    @abc.abstractmethod
    async def update_account(
        self, name: str, now: datetime, *, password_hash: str | None = None, disabled: bool | None = None
    ) -> Account:
        """Change the given fields and `updated_at`. Returns the account after the change;
        raises NotFound."""

    @abc.abstractmethod
    async def delete_account(self, name: str, now: datetime) -> None:
        """Delete the account with its keys and sessions and, in the same transaction,
        keep its name as deleted (see AccountState). Raises NotFound."""

    @abc.abstractmethod
    async def add_key(self, account: str, key_id: str, name: str, key_hash: str, now: datetime) -> ApiKey:
        """Store a key hash. Raises NotFound when the account is missing and
        AlreadyExists when the hash or id is taken (a 512-bit collision: never)."""

    @abc.abstractmethod
    async def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash if its account is enabled, else None."""

    @abc.abstractmethod
    async def list_keys(self, account: str) -> list[ApiKey]:
        """The account's keys, oldest first."""

    @abc.abstractmethod
    async def delete_key(self, account: str, *, key_id: str | None = None, key_hash: str | None = None) -> bool:
        """Delete one key of `account`, named by id or by hash. True when one was deleted."""

    @abc.abstractmethod
    async def delete_keys(self, account: str) -> int:
        """Delete every key of the account; returns how many."""

    @abc.abstractmethod
    async def touch_key(self, key_id: str, now: datetime) -> None:
        """Set `last_used_at`. No-op for a missing key."""

    @abc.abstractmethod
    async def add_session(self, token_hash: str, account: str, expires_at: datetime) -> None:
        """Store a login session."""

    @abc.abstractmethod
    async def find_session(self, token_hash: str, now: datetime) -> str | None:
        """The account of an unexpired session of an enabled account, else None.
        Expired sessions are deleted on the way."""

    @abc.abstractmethod
    async def delete_sessions(self, account: str, *, token_hash: str | None = None) -> None:
        """Delete one session (by hash) or, without `token_hash`, all of the account's."""
