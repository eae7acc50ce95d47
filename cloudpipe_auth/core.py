"""Business rules of the auth service, shared by its internal and external listeners.

Every password check and every key check goes through the failure limiter: failures
count per account and per source address, and while either bucket is empty an attempt
is refused (TooManyAttempts, HTTP 429) before the password is even hashed. A valid API
key is never refused by the per-account bucket of the internal API: keys are 512-bit
random values nobody can guess, while refusing them would let anyone who knows an
account name lock its jobs out; failed key checks still count and turn into 429.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloudpipe_auth.credentials import (
    PasswordHasher,
    digest,
    new_api_key,
    new_key_id,
    new_session_token,
)
from cloudpipe_auth.store import Account, AccountState, AccountStore, ApiKey
from cloudpipe_common.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from cloudpipe_common.names import ACCOUNT_NAME_RULE, is_reserved, is_valid_account_name
from cloudpipe_common.ratelimit import FailureLimiter

log = logging.getLogger(__name__)

MAX_PASSWORD = 1024
MAX_KEY_NAME = 100
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is refreshed at most this often
BAD_LOGIN = "Incorrect account name or password."


@dataclass(frozen=True)
class Policy:
    min_password_length: int = 8
    open_signup: bool = False
    session_ttl: timedelta = timedelta(hours=1)
    admin_token: str = ""
    # Names nobody may register, nor anything that looks like them (see auth/names.py):
    # the servers' admin account, which the auth service must never vouch for.
    reserved_names: tuple[str, ...] = ("admin",)


@dataclass(frozen=True)
class NewKey:
    """A key as it is created: `secret` is shown once and never stored."""

    record: ApiKey
    secret: str


class AccountService:
    def __init__(
        self,
        store: AccountStore,
        hasher: PasswordHasher,
        limiter: FailureLimiter,
        policy: Policy,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._limiter = limiter
        self._policy = policy
        self._clock = clock

    @property
    def signup_open(self) -> bool:
        """Whether anyone may create an account (the admin API always may)."""
        return self._policy.open_signup

    @property
    def min_password_length(self) -> int:
        return self._policy.min_password_length

    # -- accounts ------------------------------------------------------------------------

    async def create_account(self, name: str, password: str, *, by_admin: bool = False) -> Account:
        if not (self._policy.open_signup or by_admin):
            raise PermissionDenied("sign-up is closed: ask an administrator for an account")
        check_account_name(name)
        if is_reserved(name, self._policy.reserved_names):
            raise InvalidArgument(f"The account name {name!r} is reserved. Please choose another.")
        self._check_new_password(password)
        account = await self._store.create_account(name, await self._hasher.hash(password), self._clock())
        log.info("account %s created%s", name, " by the admin" if by_admin else "", extra={"account": name})
        return account

    async def check_password(self, name: str, password: str, source: str) -> Account:
        """The account if `password` is its password. Raises Unauthenticated (the same
        message for an unknown account and a wrong password) or TooManyAttempts."""
        keys = (f"account:{name}", f"source:{source}")
        self._limiter.check(*keys, what="login")
        account = await self._store.get_account(name) if name else None
        if account is None or account.disabled or len(password) > MAX_PASSWORD:
            await self._hasher.verify_nothing(password[:MAX_PASSWORD])
            ok = False
        else:
            ok = await self._hasher.verify(account.password_hash, password)
        if not ok or account is None:
            self._limiter.fail(*keys)
            log.info("failed login for account %s from %s", name, source, extra={"account": name})
            raise Unauthenticated(BAD_LOGIN)
        if self._hasher.needs_rehash(account.password_hash):
            new_hash = await self._hasher.hash(password)
            account = await self._store.update_account(name, self._clock(), password_hash=new_hash)
        return account

    async def change_password(self, name: str, current: str, new: str, source: str) -> None:
        await self.check_password(name, current, source)
        self._check_new_password(new)
        await self._store.update_account(name, self._clock(), password_hash=await self._hasher.hash(new))
        await self._store.delete_sessions(name)
        log.info("account %s changed its password; its sessions ended", name, extra={"account": name})

    def _check_new_password(self, password: str) -> None:
        if len(password) < self._policy.min_password_length:
            raise InvalidArgument(f"The password must have at least {self._policy.min_password_length} characters.")
        if len(password) > MAX_PASSWORD:
            raise InvalidArgument(f"The password must have at most {MAX_PASSWORD} characters.")

    # -- keys -------------------------------------------------------------------------------

    async def issue_key(self, account: str, name: str = "") -> NewKey:
        name = name.strip() or "key " + self._clock().strftime("%Y-%m-%d %H:%M:%S")
        if len(name) > MAX_KEY_NAME:
            raise InvalidArgument(f"The key name must have at most {MAX_KEY_NAME} characters.")
        secret = new_api_key()
        record = await self._store.add_key(account, new_key_id(), name, digest(secret), self._clock())
        log.info("account %s: key %s (%s) issued", account, record.id, name, extra={"account": account})
        return NewKey(record, secret)

    async def list_keys(self, account: str) -> list[ApiKey]:
        return await self._store.list_keys(account)

    async def revoke_key(self, account: str, key_id: str) -> None:
        if not await self._store.delete_key(account, key_id=key_id):
            raise NotFound(f"no key {key_id!r} in this account")
        log.info("account %s: key %s revoked", account, key_id, extra={"account": account})

    async def revoke_key_by_secret(self, account: str, secret: str, source: str) -> None:
        """Revoke the key `secret` of `account`: holding the key is the credential (as the
        original). A key that is not the account's counts as a failed key attempt."""
        keys = (f"account:{account}", f"source:{source}")
        self._limiter.check(*keys, what="key")
        record = await self._store.find_key(digest(secret))
        if record is None or record.account != account:
            self._limiter.fail(*keys)
            raise Unauthenticated("Unrecognized account or API key.")
        await self._store.delete_key(account, key_id=record.id)
        log.info("account %s: key %s revoked by its holder", account, record.id, extra={"account": account})

    async def validate(self, account: str | None, secret: str) -> str | None:
        """The account `secret` belongs to (it must be `account` when that is given), or
        None. Raises TooManyAttempts for a failed check past the account's budget."""
        record = await self._store.find_key(digest(secret)) if secret else None
        if record is not None and (account is None or record.account == account):
            now = self._clock()
            if record.last_used_at is None or now - record.last_used_at >= TOUCH_EVERY:
                await self._store.touch_key(record.id, now)
            return record.account
        bucket = f"key:{account if account is not None else '*'}"
        self._limiter.check(bucket, what="key")
        self._limiter.fail(bucket)
        log.info(
            "failed key check for account %s",
            account if account is not None else "(from key)",
            extra={} if account is None else {"account": account},
        )
        return None

    # -- sessions ---------------------------------------------------------------------------

    async def login(self, name: str, password: str, source: str) -> tuple[str, datetime]:
        """A new session token for the account, and when it expires."""
        await self.check_password(name, password, source)
        token = new_session_token()
        expires = self._clock() + self._policy.session_ttl
        await self._store.add_session(digest(token), name, expires)
        log.info("account %s logged in from %s", name, source, extra={"account": name})
        return token, expires

    async def session_account(self, token: str, source: str) -> str:
        self._limiter.check(f"source:{source}", what="session")
        account = await self._store.find_session(digest(token), self._clock())
        if account is None:
            self._limiter.fail(f"source:{source}")
            raise Unauthenticated("The session expired or is unknown: log in again.")
        return account

    async def logout(self, account: str, token: str) -> None:
        await self._store.delete_sessions(account, token_hash=digest(token))

    # -- administration -----------------------------------------------------------------------

    def check_admin(self, token: str, source: str) -> None:
        """Accept the admin credential (constant-time); failures are rate-limited."""
        if not self._policy.admin_token:
            raise NotFound("The admin API is disabled: set CLOUDPIPE_AUTH_ADMIN_TOKEN.")
        self._limiter.check(f"source:{source}", "account:(admin)", what="admin")
        if not hmac.compare_digest(token.encode(), self._policy.admin_token.encode()):
            self._limiter.fail(f"source:{source}", "account:(admin)")
            log.warning("failed admin credential from %s", source)
            raise Unauthenticated("Wrong admin credential.")

    async def list_accounts(self) -> list[Account]:
        return await self._store.list_accounts()

    async def get_account(self, name: str) -> Account:
        account = await self._store.get_account(name)
        if account is None:
            raise NotFound(f"no account {name!r}")
        return account

    async def set_disabled(self, name: str, disabled: bool) -> Account:
        account = await self._store.update_account(name, self._clock(), disabled=disabled)
        if disabled:
            await self._store.delete_sessions(name)
        log.info("account %s %s by the admin", name, "disabled" if disabled else "enabled", extra={"account": name})
        return account

    async def delete_account(self, name: str) -> None:
        """Delete the account; its name is never registered again (AccountState)."""
        await self._store.delete_account(name, self._clock())
        log.info("account %s deleted by the admin; its name stays taken", name, extra={"account": name})

    async def account_state(self, name: str) -> AccountState | None:
        return await self._store.account_state(name)

    async def revoke_all_keys(self, name: str) -> int:
        await self.get_account(name)
        count = await self._store.delete_keys(name)
        log.info("account %s: %d key(s) revoked by the admin", name, count, extra={"account": name})
        return count


def check_account_name(name: str) -> None:
    if not is_valid_account_name(name):
        raise InvalidArgument(f"The account name must be {ACCOUNT_NAME_RULE}.")
