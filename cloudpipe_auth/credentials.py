"""Secrets of the auth service and how they are kept.

- Passwords: argon2id (argon2-cffi, RFC 9106 parameters), a memory-hard slow hash,
  because people choose guessable passwords. Hashing runs in worker threads, a few at
  a time, so a burst of logins can neither block the event loop nor exhaust memory.
- API keys: 64 random bytes as 128 lowercase hex characters (the original's format),
  stored as SHA-256. A slow hash buys nothing for a 512-bit random secret: nobody can
  enumerate the key space, so a fast, unsalted digest is enough, and it lets a key be
  looked up by its hash (keys are globally unique).
- Session tokens: 32 random bytes, stored as SHA-256 for the same reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

KEY_BYTES = 64


def new_api_key() -> str:
    """A fresh API key: 128 hex characters."""
    return secrets.token_hex(KEY_BYTES)


def new_key_id() -> str:
    """A public, non-secret identifier of a key, for listing and revoking."""
    return "key_" + secrets.token_hex(8)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 hex of a high-entropy secret (an API key or a session token)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class PasswordHasher:
    """argon2id hashing and checking, off the event loop, at most `parallel` at once."""

    def __init__(self, hasher: Argon2Hasher | None = None, parallel: int = 4) -> None:
        self._hasher = hasher or Argon2Hasher()
        self._slots = asyncio.Semaphore(parallel)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, encoded, password)

    def _verify(self, encoded: str, password: str) -> bool:
        try:
            return self._hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify_nothing(self, password: str) -> None:
        """Spend the time of one verification, for an unknown account: answering
        faster would tell which account names exist."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_hex(16))
        await self.verify(self._dummy, password)

    def needs_rehash(self, encoded: str) -> bool:
        return self._hasher.check_needs_rehash(encoded)
