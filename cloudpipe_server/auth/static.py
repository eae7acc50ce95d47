"""Authenticators that need no service: the admin credential from the environment
(as the original server's PIPE_ADMINNAME / PIPE_ADMINKEY), and anonymous access for
explicitly insecure local use."""

from __future__ import annotations

import hmac

from cloudpipe_server.auth.base import Authenticator, Principal, Standing
from cloudpipe_server.errors import Unauthenticated


class StaticAdminAuthenticator(Authenticator):
    """Accepts exactly one account name and key; compares in constant time."""

    def __init__(self, name: str, key: str) -> None:
        if not name or not key:
            raise ValueError("the admin name and key must both be set")
        self._name = name
        self._key = key.encode()

    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        if not key:
            raise Unauthenticated("credentials missing: send an API key")
        name_ok = account is None or hmac.compare_digest(account.encode(), self._name.encode())
        key_ok = hmac.compare_digest(key.encode(), self._key)
        if not (name_ok and key_ok):
            raise Unauthenticated(f"unable to authenticate account [{account or '?'}]")
        return Principal(self._name, admin=True)

    async def standing(self, account: str) -> Standing | None:
        return Standing.ACTIVE if hmac.compare_digest(account.encode(), self._name.encode()) else None


class AnonymousAuthenticator(Authenticator):
    """Everyone is `account`. Only for `--insecure-no-auth`; the server warns loudly."""

    def __init__(self, account: str = "anonymous") -> None:
        self._account = account

    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        return Principal(account or self._account, admin=False)

    async def standing(self, account: str) -> Standing | None:
        return Standing.ACTIVE
