"""`ChainAuthenticator`: asks each authenticator in turn, as the original server did
(the admin credential from the environment first, then the auth service, spec 2.3).

Only Unauthenticated moves on to the next one; Unavailable and TooManyAttempts end
the chain, so an auth-service outage is never turned into "wrong key" or "allowed".
Names in `reserved` (the admin account), and names that look like them (`Admin`,
`admin\n`: see names.py), cannot be claimed by a later authenticator: an auth-service
account called "admin" would otherwise share the admin's jobs. A later authenticator's
name that is not a valid account name (a trailing newline, say) is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cloudpipe_common.names import is_reserved, is_valid_account_name
from cloudpipe_server.auth.base import Authenticator, Principal, Standing
from cloudpipe_server.errors import Unauthenticated


class ChainAuthenticator(Authenticator):
    def __init__(self, authenticators: Sequence[Authenticator], *, reserved: Iterable[str] = ()) -> None:
        if not authenticators:
            raise ValueError("a chain needs at least one authenticator")
        self._first, *self._rest = authenticators
        self._reserved = frozenset(reserved)

    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        try:
            return await self._first.authenticate(account, key)
        except Unauthenticated as exc:
            error = exc
        for authenticator in self._rest:
            try:
                principal = await authenticator.authenticate(account, key)
            except Unauthenticated as exc:
                error = exc
                continue
            name = principal.account
            if not is_valid_account_name(name) or is_reserved(name, self._reserved):
                shown = name if is_valid_account_name(name) else repr(name)  # never a raw newline in a log line
                raise Unauthenticated(f"unable to authenticate account [{shown}]")
            return principal
        raise error

    async def standing(self, account: str) -> Standing | None:
        """The first authenticator's answer that is not None; a reserved name (or an
        invalid one) counts only from the first; GONE when nobody vouches for it."""
        first = await self._first.standing(account)
        if first is not None:
            return first
        if is_valid_account_name(account) and not is_reserved(account, self._reserved):
            for authenticator in self._rest:
                answer = await authenticator.standing(account)
                if answer is not None:
                    return answer
        return Standing.GONE

    async def close(self) -> None:
        for authenticator in (self._first, *self._rest):
            await authenticator.close()
