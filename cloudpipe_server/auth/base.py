"""The authenticator protocol shared by the gRPC interceptor and the HTTP gateway."""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: every job belongs to exactly one account."""

    account: str
    admin: bool = False


class Authenticator(abc.ABC):
    """Turns presented credentials into a Principal."""

    @abc.abstractmethod
    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        """Return the caller. `account` may be None when the key alone identifies it.
        Raises Unauthenticated for missing or wrong credentials and Unavailable when
        the credentials cannot be checked right now (never "allowed")."""

    async def close(self) -> None:  # noqa: B027 - most authenticators hold nothing
        """Release connections (an HTTP client, say). Called once at shutdown."""
