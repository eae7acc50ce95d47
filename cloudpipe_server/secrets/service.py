"""The secret service layer: an account's secrets set, listed and deleted (names and
times only ever leave it), checked at submit, and resolved for the executor when a job
starts. Another account's secret is answered exactly as a missing one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from cloudpipe_server.models import Job, JobSpec
from cloudpipe_server.secrets.keyring import Keyring
from cloudpipe_server.secrets.naming import MAX_VALUE_BYTES, check_name, parse_uses
from cloudpipe_server.store.base import SecretStore, StoredSecret

log = logging.getLogger(__name__)


class SecretService:
    def __init__(
        self, store: SecretStore, keyring: Keyring, clock: Callable[[], datetime], max_per_account: int = 100
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._clock = clock
        self._max = max_per_account

    async def set(self, caller: Principal, name: str, value: bytes) -> StoredSecret:
        check_name(name)
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidArgument(f"value: at most {MAX_VALUE_BYTES} bytes, got {len(value)}")
        existing = await self._store.list_secrets(caller.account)
        if len(existing) >= self._max and name not in {s.name for s in existing}:
            raise ResourceExhausted(f"this account has {self._max} secrets, the most it may have; delete one first")
        stored = await self._store.put_secret(caller.account, name, self._keyring.encrypt(value), self._clock())
        log.info("account %s: secret %s set", caller.account, name)  # the name only, never the value
        return stored

    async def list_all(self, caller: Principal) -> list[StoredSecret]:
        return await self._store.list_secrets(caller.account)

    async def delete(self, caller: Principal, name: str) -> None:
        check_name(name)
        if not await self._store.delete_secret(caller.account, name):
            raise NotFound(f"secret {name!r} not found")
        log.info("account %s: secret %s deleted", caller.account, name)

    async def check_uses(self, account: str, specs: Sequence[JobSpec]) -> None:
        """At submit: every secret a job names (in `secrets` and as its
        `storage_secret`) is the account's (else NotFound)."""
        wanted: dict[str, str] = {}
        for index, spec in enumerate(specs):
            for use in parse_uses(spec.secrets, spec.env, f"jobs[{index}]"):
                wanted.setdefault(use.name, f"jobs[{index}].secrets")
            if spec.storage_secret:
                wanted.setdefault(check_name(spec.storage_secret), f"jobs[{index}].storage_secret")
        if not wanted:
            return
        found = await self._store.get_secrets(account, sorted(wanted))
        for name, where in wanted.items():
            if name not in found:
                raise NotFound(f"{where}: secret {name!r} not found (set it first)")

    async def resolve(self, job: Job) -> Job:
        """The job as its executor gets it: its secrets' values attached (not in its spec).
        FailedPrecondition when one is gone or cannot be decrypted (the job fails so)."""
        uses = parse_uses(job.spec.secrets, job.spec.env, "job")
        storage = job.spec.storage_secret
        if not uses and not storage:
            return job
        found = await self._store.get_secrets(job.account, sorted({use.name for use in uses} | {storage} - {""}))
        credentials = b""
        if storage:
            stored_storage = found.get(storage)
            if stored_storage is None:
                raise FailedPrecondition(
                    f"storage secret {storage!r} no longer exists (deleted after the job was submitted)"
                )
            credentials = self._keyring.decrypt(stored_storage.ciphertext, storage)
        env: dict[str, str] = {}
        files: dict[str, bytes] = {}
        for use in uses:
            stored = found.get(use.name)
            if stored is None:
                raise FailedPrecondition(f"secret {use.name!r} no longer exists (deleted after the job was submitted)")
            value = self._keyring.decrypt(stored.ciphertext, use.name)
            if use.path:
                files[use.path] = value
            else:
                try:
                    env[use.name] = value.decode()
                except UnicodeDecodeError:
                    raise FailedPrecondition(
                        f"secret {use.name!r} is not UTF-8 text, so it cannot be an environment variable;"
                        f" give it as a file ({use.name}:/path)"
                    ) from None
                if "\0" in env[use.name]:
                    raise FailedPrecondition(f"secret {use.name!r} holds a NUL byte; give it as a file")
        return replace(job, secret_env=env, secret_files=files, storage_credentials=credentials)

    async def rotate_key(self) -> int:
        """A new key encrypts from now on; every stored secret is re-encrypted with it in
        one transaction, then the old keys are dropped. Returns how many were rewritten."""
        self._keyring.add_key()
        count = await self._store.reencrypt_secrets(self._keyring.rotated)
        self._keyring.drop_old_keys()
        log.info("secrets key rotated: %d secrets re-encrypted", count)
        return count
