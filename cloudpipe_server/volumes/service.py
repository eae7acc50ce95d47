"""The volume service layer: an account's volumes and their files, within the quotas.
A volume of another account is answered exactly as a missing one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from cloudpipe_server.models import JobSpec
from cloudpipe_server.volumes.engine import Entry, VolumeEngine, VolumeInfo
from cloudpipe_server.volumes.naming import MAX_DESCRIPTION_BYTES, check_name, check_target, clean_path, parse_mounts


@dataclass(frozen=True)
class VolumeQuotas:
    max_per_account: int = 20
    max_bytes: int = 10 << 30  # per volume, counted at each upload


class VolumeService:
    def __init__(self, engine: VolumeEngine, quotas: VolumeQuotas) -> None:
        self._engine = engine
        self._quotas = quotas

    async def create(self, caller: Principal, name: str, mount_path: str = "", description: str = "") -> VolumeInfo:
        check_name(name)
        if mount_path:
            mount_path = check_target(mount_path, "mount_path")
        if len(description.encode()) > MAX_DESCRIPTION_BYTES:
            raise InvalidArgument(f"description: at most {MAX_DESCRIPTION_BYTES} bytes")
        if not caller.account.isprintable():
            raise InvalidArgument("this account's name has control characters: it cannot own volumes")
        if await self._engine.inspect(caller.account, name) is not None:
            raise AlreadyExists(f"volume {name!r} exists")
        if len(await self._engine.list_volumes(caller.account)) >= self._quotas.max_per_account:
            raise ResourceExhausted(
                f"this account has {self._quotas.max_per_account} volumes, the most it may have; delete one first"
            )
        return await self._engine.create(caller.account, name, mount_path, description)

    async def get(self, caller: Principal, name: str) -> VolumeInfo:
        found = await self._existing(caller, name)
        size = await self._engine.size(caller.account, name)
        return VolumeInfo(found.name, found.created_at, size, found.mount_path, found.description)

    async def list_all(self, caller: Principal) -> list[VolumeInfo]:
        return await self._engine.list_volumes(caller.account)

    async def delete(self, caller: Principal, name: str) -> None:
        await self._existing(caller, name)
        await self._engine.remove(caller.account, name)

    async def list_files(self, caller: Principal, volume: str, path: str) -> tuple[list[Entry], bool]:
        await self._existing(caller, volume, "volume")
        return await self._engine.list_files(caller.account, volume, clean_path(path))

    async def make_directory(self, caller: Principal, volume: str, path: str) -> Entry:
        await self._existing(caller, volume, "volume")
        return await self._engine.make_directory(caller.account, volume, clean_path(path, top=False))

    async def remove_file(self, caller: Principal, volume: str, path: str) -> None:
        await self._existing(caller, volume, "volume")
        await self._engine.remove_path(caller.account, volume, clean_path(path, top=False))

    async def upload(
        self, caller: Principal, volume: str, path: str, size: int, mode: int, chunks: AsyncIterator[bytes]
    ) -> Entry:
        clean = clean_path(path, top=False)
        if size < 0:
            raise InvalidArgument("size_bytes: must not be negative")
        if mode > 0o777:
            raise InvalidArgument("mode: permission bits only (at most 0o777)")
        await self._existing(caller, volume, "volume")
        if size > self._quotas.max_bytes:
            raise ResourceExhausted(f"{size} bytes is over the quota of {self._quotas.max_bytes} bytes per volume")
        return await self._engine.upload(caller.account, volume, clean, size, mode, chunks, self._quotas.max_bytes)

    async def download(self, caller: Principal, volume: str, path: str) -> AsyncIterator[Entry | bytes]:
        await self._existing(caller, volume, "volume")
        async for item in self._engine.download(caller.account, volume, clean_path(path, top=False)):
            yield item

    async def check_mounts(self, account: str, specs: Sequence[JobSpec]) -> None:
        """Refuse, at submit, a job mounting a volume the account does not have."""
        seen: set[str] = set()
        for index, spec in enumerate(specs):
            for mount in parse_mounts(spec.volumes, f"jobs[{index}]"):
                if mount.name in seen:
                    continue
                if await self._engine.inspect(account, mount.name) is None:
                    raise NotFound(f"jobs[{index}].volumes: volume {mount.name!r} not found (create it first)")
                seen.add(mount.name)

    async def _existing(self, caller: Principal, name: str, what: str = "name") -> VolumeInfo:
        check_name(name, what)
        found = await self._engine.inspect(caller.account, name)
        if found is None:
            raise NotFound(f"volume {name!r} not found")
        return found
