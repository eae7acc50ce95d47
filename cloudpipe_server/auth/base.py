"""The authenticator protocol shared by the gRPC interceptor and the HTTP gateway."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: every job belongs to exactly one account."""

    account: str
    admin: bool = False


class Standing(enum.Enum):
    """Whether an account may still have work done in its name when no caller is there
    (a schedule's fire): ACTIVE; DISABLED (it may come back); GONE (deleted, or no
    authenticator vouches for it: it can never authenticate again)."""

    ACTIVE = "active"
    DISABLED = "disabled"
    GONE = "gone"


class StandingCheck(Protocol):
    """Where an account stands (the server's `Authenticator` is one)."""

    async def standing(self, account: str) -> Standing | None:
        """None or ACTIVE: it may act; raises Unavailable when that cannot be told."""


class Authenticator(abc.ABC):
    """Turns presented credentials into a Principal."""

    @abc.abstractmethod
    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        """Return the caller. `account` may be None when the key alone identifies it.
        Raises Unauthenticated for missing or wrong credentials and Unavailable when
        the credentials cannot be checked right now (never "allowed")."""

    async def standing(self, account: str) -> Standing | None:
        """Where `account` stands, or None when this authenticator does not vouch for
        that name (a chain asks the next one). Raises Unavailable when it cannot tell
        right now: work in the account's name then waits."""
        return None

    async def close(self) -> None:  # noqa: B027 - most authenticators hold nothing
        """Release connections (an HTTP client, say). Called once at shutdown."""
