"""The key secrets are encrypted with: Fernet (AES-128-CBC with HMAC-SHA256, from the
`cryptography` package the server already needs for its PKI), kept in a key file of
the server's data dir, mode 0600, made on first use.

The file holds one key per line, newest first: the first encrypts, every one decrypts,
so a rotation adds a key on top, re-encrypts every stored secret with it
(`SecretStore.reencrypt_secrets`, one transaction) and then drops the old lines.
Servers sharing one store must share the key file (CLOUDPIPE_SECRETS_KEY_FILE)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from cloudpipe_server.errors import FailedPrecondition, InvalidArgument


class Keyring:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._keys: list[bytes] = []

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> None:
        """Read the key file, making it (with one new key) when it does not exist."""
        if not self._path.exists():
            self._write([Fernet.generate_key()])
        mode = self._path.stat().st_mode & 0o777
        if mode & 0o077:
            raise InvalidArgument(f"{self._path}: the secrets key file must be readable by its owner only (chmod 600)")
        keys = [line.strip().encode() for line in self._path.read_text().splitlines() if line.strip()]
        if not keys:
            raise InvalidArgument(f"{self._path}: the secrets key file holds no key")
        try:
            for key in keys:
                Fernet(key)
        except ValueError:
            raise InvalidArgument(f"{self._path}: a line of the secrets key file is not a Fernet key") from None
        self._keys = keys

    def _fernet(self) -> MultiFernet:
        if not self._keys:
            self.load()
        return MultiFernet([Fernet(key) for key in self._keys])

    def encrypt(self, value: bytes) -> bytes:
        return self._fernet().encrypt(value)

    def decrypt(self, token: bytes, name: str) -> bytes:
        try:
            return self._fernet().decrypt(token)
        except InvalidToken:
            pass
        try:  # another server sharing the file may have rotated the key: read it again
            self.load()
            return self._fernet().decrypt(token)
        except InvalidToken:
            raise FailedPrecondition(
                f"secret {name!r} cannot be decrypted with this server's key file ({self._path});"
                " servers sharing a store must share CLOUDPIPE_SECRETS_KEY_FILE"
            ) from None

    def add_key(self) -> None:
        """Put a new key first (it encrypts from now on); the old ones still decrypt."""
        self._fernet()
        self._keys = [Fernet.generate_key(), *self._keys]
        self._write(self._keys)

    def rotated(self, token: bytes) -> bytes:
        """`token` re-encrypted with the first key."""
        return self._fernet().rotate(token)

    def drop_old_keys(self) -> None:
        """Keep only the first key (after every secret was re-encrypted with it)."""
        self._fernet()
        self._keys = self._keys[:1]
        self._write(self._keys)

    def _write(self, keys: list[bytes]) -> None:
        """Replace the file atomically, 0600 from its first byte."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".secrets-key-")
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write("".join(key.decode() + "\n" for key in keys))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
