"""Volumes on the Docker engine: a named engine volume per (cluster, account, name), and
the files in it read and written through short-lived helper containers.

A helper is the runner image with only that volume mounted at /v, as the runner's user
(1000), no network, no capabilities, a small memory and pids limit: it copies a file in
or out (the engine's archive API on a created, never started, container) or runs one
fixed command (find, du, mv, rm) with the user's path as an argument, never as shell
text. Helpers are labelled and always removed; a volume in use by one cannot be removed.

Uploads are streamed into the engine as a tar of one file under a temporary name, then
renamed over the target, so a cut upload never leaves half a file under its name."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import queue
import secrets
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import Mount

from cloudpipe_server.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from cloudpipe_server.images.engine import Engine
from cloudpipe_server.volumes.naming import (
    LABEL_ACCOUNT,
    LABEL_CLUSTER,
    LABEL_DESCRIPTION,
    LABEL_MOUNT_PATH,
    LABEL_VOLUME,
    engine_name,
)

log = logging.getLogger(__name__)

RUNNER_USER = 1000
LABEL_HELPER = "org.cloudpipe.volume.helper"
MAX_ENTRIES = 10_000
CHUNK = 1 << 20
_DIRECTORY_BIT = 1 << 31  # Go's os.ModeDir, as the engine's archive stat reports it
_SYMLINK_BIT = 1 << 27
_TOP = "/v"
HELPER_SECONDS = 300  # a helper runs one find, du, mv or rm: far less, even on a big volume
STALE_HELPER_SECONDS = 2 * HELPER_SECONDS  # older than this, a helper's server has gone
RELEASE_SECONDS = 5.0  # how long a delete waits for ended jobs' containers to be removed


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    created_at: datetime | None
    size_bytes: int = 0
    mount_path: str = ""  # where a job naming the volume without a path mounts it; "": none
    description: str = ""


def _info(name: str, attrs: dict[str, Any]) -> VolumeInfo:
    labels = attrs.get("Labels") or {}
    return VolumeInfo(
        name,
        _when(str(attrs.get("CreatedAt", ""))),
        mount_path=str(labels.get(LABEL_MOUNT_PATH, "")),
        description=str(labels.get(LABEL_DESCRIPTION, "")),
    )


@dataclass(frozen=True)
class Entry:
    path: str
    directory: bool
    size_bytes: int
    mode: int
    modified_at: datetime | None


class _Exit(Exception):
    def __init__(self, code: int, output: str) -> None:
        super().__init__(f"exit {code}: {output}")
        self.code = code
        self.output = output


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC) if text else None
    except ValueError:
        return None


class VolumeEngine:
    def __init__(self, engine: Engine, cluster: str, helper_image: str) -> None:
        self._engine = engine
        self._cluster = cluster
        self._image = helper_image

    def _engine_name(self, account: str, name: str) -> str:
        return engine_name(self._cluster, account, name)

    # -- volumes -------------------------------------------------------------------------

    async def create(self, account: str, name: str, mount_path: str = "", description: str = "") -> VolumeInfo:
        labels = {LABEL_VOLUME: name, LABEL_ACCOUNT: account, LABEL_CLUSTER: self._cluster}
        if mount_path:
            labels[LABEL_MOUNT_PATH] = mount_path
        if description:
            labels[LABEL_DESCRIPTION] = description
        engine_volume = self._engine_name(account, name)
        attrs = await self._engine.call(lambda api: api.create_volume(engine_volume, labels=labels))
        # the mount point belongs to the runner's user, so jobs and uploads can write in it
        await self._with_helper(account, name, lambda api, helper: api.put_archive(helper, "/", _top_archive()))
        return _info(name, {**attrs, "Labels": labels})

    async def inspect(self, account: str, name: str) -> VolumeInfo | None:
        try:
            attrs = await self._engine.call(lambda api: api.inspect_volume(self._engine_name(account, name)))
        except docker.errors.NotFound:
            return None
        labels = attrs.get("Labels") or {}
        if labels.get(LABEL_ACCOUNT) != account or labels.get(LABEL_CLUSTER) != self._cluster:
            return None
        return _info(name, attrs)

    async def list_volumes(self, account: str) -> list[VolumeInfo]:
        wanted = {"label": [f"{LABEL_ACCOUNT}={account}", f"{LABEL_CLUSTER}={self._cluster}"]}
        found = await self._engine.call(lambda api: api.volumes(filters=wanted))
        volumes = []
        for attrs in found.get("Volumes") or []:
            labels = attrs.get("Labels") or {}
            if labels.get(LABEL_ACCOUNT) == account and labels.get(LABEL_CLUSTER) == self._cluster:
                volumes.append(_info(str(labels.get(LABEL_VOLUME, "")), attrs))
        return sorted(volumes, key=lambda v: v.name)

    async def remove(self, account: str, name: str) -> None:
        engine_volume = self._engine_name(account, name)
        deadline = time.monotonic() + RELEASE_SECONDS
        while True:
            try:
                await self._engine.call(lambda api: api.remove_volume(engine_volume))
                return
            except docker.errors.NotFound:
                raise NotFound(f"volume {name!r} not found") from None
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
            # in use: by a running job (refused), by a job that just ended and whose
            # container is being removed (wait a moment), or by a helper a crashed server
            # left behind (removed)
            running = await self._engine.call(lambda api: _holders(api, engine_volume))
            if running or time.monotonic() > deadline:
                raise FailedPrecondition(f"volume {name!r} is in use by a job; delete it when the job ends")
            await asyncio.sleep(0.1)

    async def size(self, account: str, name: str) -> int:
        output = await self._run(account, name, ["du", "-sb", _TOP])
        return int(output.split()[0]) if output.split() else 0

    # -- files ---------------------------------------------------------------------------

    async def list_files(self, account: str, name: str, path: str) -> tuple[list[Entry], bool]:
        script = (
            'cd /v && if [ ! -e "$1" ]; then exit 2; elif [ ! -d "$1" ]; then exit 3; fi;'
            f" find \"$1\" -mindepth 1 -maxdepth 1 -printf '%y\\t%s\\t%m\\t%T@\\t%P\\0' | head -z -n {MAX_ENTRIES + 1}"
        )
        try:
            output = await self._run(account, name, ["bash", "-c", script, "list", path or "."])
        except _Exit as exc:
            raise self._missing(exc, path, "directory") from None
        entries = []
        for record in output.split("\0"):
            kind, size, mode, mtime, rel = [*record.split("\t", 4), "", "", "", ""][:5]
            if not rel:
                continue
            modified = datetime.fromtimestamp(float(mtime), UTC) if mtime else None
            full = f"{path}/{rel}" if path else rel
            entries.append(Entry(full, kind == "d", int(size or 0), int(mode or "0", 8), modified))
        entries.sort(key=lambda e: e.path)
        return entries[:MAX_ENTRIES], len(entries) > MAX_ENTRIES

    async def make_directory(self, account: str, name: str, path: str) -> Entry:
        """`path` and its missing parents made as directories (done when it is one)."""
        # "./$1" for find: a path may start with '-', which find would read as an option
        script = (
            'cd /v && if [ -e "$1" ] && [ ! -d "$1" ]; then exit 3; fi;'
            ' err=$(mkdir -p -- "$1" 2>&1) || { echo "$err"; exit 4; };'
            " find \"./$1\" -maxdepth 0 -printf '%m\\t%T@'"
        )
        try:
            output = await self._run(account, name, ["bash", "-c", script, "mkdir", path])
        except _Exit as exc:
            if exc.code == 3 or "Not a directory" in exc.output:
                raise FailedPrecondition(f"{path!r}: a file is in the way of that directory") from None
            if exc.code == 4:
                raise FailedPrecondition(f"could not make {path!r}: {exc.output.strip()[:200]}") from None
            raise self._missing(exc, path, "directory") from None
        mode, _, mtime = output.strip().partition("\t")
        modified = datetime.fromtimestamp(float(mtime), UTC) if mtime else None
        return Entry(path, True, 0, int(mode or "0", 8), modified)

    async def remove_path(self, account: str, name: str, path: str) -> None:
        script = 'cd /v && if [ ! -e "$1" ] && [ ! -L "$1" ]; then exit 2; fi; rm -rf -- "$1"'
        try:
            await self._run(account, name, ["bash", "-c", script, "rm", path])
        except _Exit as exc:
            raise self._missing(exc, path, "file") from None

    async def upload(
        self, account: str, name: str, path: str, size: int, mode: int, chunks: AsyncIterator[bytes], max_bytes: int
    ) -> Entry:
        """Write `size` bytes from `chunks` to `path`: whole, or not at all; refused
        (and nothing kept) when the volume would then hold more than `max_bytes`."""
        directory = path.rpartition("/")[0]
        hidden = f".cloudpipe-upload-{secrets.token_hex(6)}"
        temporary = f"{directory}/{hidden}" if directory else hidden
        feed: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

        def body() -> Iterator[bytes]:
            yield _header_blocks(directory, temporary, size, mode)
            while True:
                item = feed.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
            yield b"\0" * ((-size) % 512) + b"\0" * 1024

        def put(api: docker.APIClient, helper: str) -> None:
            if not api.put_archive(helper, _TOP, body()):
                raise FailedPrecondition(f"the engine refused to write {path!r}")

        writing = asyncio.ensure_future(self._with_helper(account, name, put))

        async def offer(item: bytes | BaseException | None) -> None:
            """Hand `item` to the writer; stop waiting once the writer has ended."""
            while not writing.done():
                try:
                    await asyncio.to_thread(feed.put, item, True, 0.5)
                    return
                except queue.Full:
                    continue
            await writing  # it ended early: its error is the upload's

        sent = 0
        try:
            async for chunk in chunks:
                sent += len(chunk)
                if sent > size:
                    raise InvalidArgument(f"more than the {size} bytes the upload announced")
                await offer(chunk)
            if sent != size:
                raise InvalidArgument(f"the upload announced {size} bytes and sent {sent}")
            await offer(None)
            await writing
        except BaseException:
            if not writing.done():
                with contextlib.suppress(BaseException):
                    await offer(InvalidArgument("the upload was cut off"))
                await asyncio.gather(writing, return_exceptions=True)
            await self._forget_temporary(account, name, temporary)
            raise
        # one helper: the quota (the file being replaced does not count), then into place
        script = (
            'cd /v && if [ -d "$2" ] && [ ! -L "$2" ]; then rm -f -- "$1"; exit 3; fi;'
            ' old=0; if [ -f "$2" ] && [ ! -L "$2" ]; then old=$(stat -c %s -- "$2"); fi;'
            " used=$(( $(du -sb . | cut -f1) - old ));"
            ' if [ "$used" -gt "$3" ]; then rm -f -- "$1"; echo "$used"; exit 4; fi;'
            ' mv -fT -- "$1" "$2"'
        )
        try:
            await self._run(account, name, ["bash", "-c", script, "mv", temporary, path, str(max_bytes)])
        except _Exit as exc:
            if exc.code == 3:
                raise FailedPrecondition(f"{path!r} is a directory in the volume") from None
            if exc.code == 4:
                raise ResourceExhausted(
                    f"volume {name!r} would hold {exc.output.strip()} bytes with this file, over its quota of"
                    f" {max_bytes}; nothing was written"
                ) from None
            await self._forget_temporary(account, name, temporary)
            raise FailedPrecondition(f"could not write {path!r}: {exc.output.strip()[:200]}") from None
        return Entry(path, False, size, mode or 0o644, datetime.now(UTC))

    async def download(self, account: str, name: str, path: str) -> AsyncIterator[Entry | bytes]:
        """The file's entry, then its bytes in chunks."""
        out: queue.Queue[Entry | bytes | BaseException | None] = queue.Queue(maxsize=4)
        stopped = threading.Event()

        def read(api: docker.APIClient, helper: str) -> None:
            try:
                try:
                    stream, stat = api.get_archive(helper, f"{_TOP}/{path}", chunk_size=CHUNK)
                except docker.errors.NotFound:
                    raise NotFound(f"no file {path!r} in volume {name!r}") from None
                file_mode = int(stat.get("mode", 0))
                if file_mode & _DIRECTORY_BIT:
                    raise FailedPrecondition(f"{path!r} is a directory: list it, or download its files")
                if file_mode & _SYMLINK_BIT:
                    raise FailedPrecondition(f"{path!r} is a symbolic link; download what it points to")
                with tarfile.open(fileobj=_Reader(stream), mode="r|", bufsize=CHUNK) as tar:
                    member = tar.next()
                    if member is None or not member.isfile():
                        raise FailedPrecondition(f"{path!r} is not a regular file")
                    out.put(Entry(path, False, member.size, member.mode, datetime.fromtimestamp(member.mtime, UTC)))
                    data = tar.extractfile(member)
                    assert data is not None
                    while not stopped.is_set() and (chunk := data.read(CHUNK)):
                        while not stopped.is_set():
                            try:
                                out.put(chunk, timeout=0.5)
                                break
                            except queue.Full:
                                continue
                out.put(None)
            except BaseException as exc:
                out.put(exc)

        reading = asyncio.ensure_future(self._with_helper(account, name, read))
        try:
            while True:
                try:
                    # with a timeout: a cancelled wait must not leave a thread blocked on
                    # the queue for ever (the server's shutdown waits for its threads)
                    item = await asyncio.to_thread(out.get, True, 0.5)
                except queue.Empty:
                    continue
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
            await reading
        finally:
            if not reading.done():
                # the caller stopped reading: the reader stops at its next chunk
                stopped.set()
                while not reading.done():
                    try:
                        out.get_nowait()
                    except queue.Empty:
                        await asyncio.sleep(0.01)

    # -- helpers -------------------------------------------------------------------------

    def _missing(self, exc: _Exit, path: str, what: str) -> Exception:
        if exc.code == 2:
            return NotFound(f"nothing at {path!r} in the volume")
        if exc.code == 3:
            return FailedPrecondition(f"{path!r} is not a {what}")
        return FailedPrecondition(f"the volume helper failed: {exc.output.strip()[:200]}")

    async def _forget_temporary(self, account: str, name: str, temporary: str) -> None:
        try:
            await self._run(account, name, ["rm", "-f", "--", f"{_TOP}/{temporary}"])
        except Exception as exc:  # best effort: a leftover temporary name is harmless
            log.warning("volume %s: could not remove %s: %s", name, temporary, exc)

    async def _run(self, account: str, name: str, command: list[str]) -> str:
        """Run `command` in a helper; its output, or _Exit with a non-zero code."""

        def run(api: docker.APIClient, helper: str) -> str:
            api.start(helper)
            try:
                code = int(api.wait(helper, timeout=HELPER_SECONDS).get("StatusCode", 1))
            except requests.exceptions.ReadTimeout:
                raise Unavailable(f"the volume's helper did not finish within {HELPER_SECONDS} s; try again") from None
            output = api.logs(helper, stdout=True, stderr=code != 0).decode(errors="replace")
            if code != 0:
                raise _Exit(code, output)
            return str(output)

        return str(await self._with_helper(account, name, run, command))

    async def _with_helper(
        self, account: str, name: str, work: Callable[[docker.APIClient, str], Any], command: list[str] | None = None
    ) -> Any:
        engine_volume = self._engine_name(account, name)

        def run(api: docker.APIClient) -> Any:
            host = api.create_host_config(
                mounts=[Mount(_TOP, engine_volume, type="volume")],
                network_mode="none",
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mem_limit=128 << 20,
                pids_limit=64,
            )
            helper = api.create_container(
                self._image,
                command or ["true"],
                user=f"{RUNNER_USER}:{RUNNER_USER}",
                entrypoint=[],
                host_config=host,
                network_disabled=True,
                labels={LABEL_HELPER: engine_volume, LABEL_CLUSTER: self._cluster},
            )["Id"]
            try:
                return work(api, helper)
            finally:
                try:
                    api.remove_container(helper, force=True)
                except docker.errors.APIError as exc:
                    log.warning("volume %s: could not remove helper %s: %s", name, helper[:12], exc)

        started = time.monotonic()
        try:
            return await self._engine.call(run)
        finally:
            log.debug("volume %s: helper took %.3f s", name, time.monotonic() - started)


class _Reader(io.RawIOBase):
    """A file-like view of the engine's archive stream, for tarfile's stream mode: each
    read copies only what it returns."""

    def __init__(self, stream: Iterator[bytes]) -> None:
        self._stream = stream
        self._buffer = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) - self._offset < size:
            try:
                chunk = next(self._stream)
            except StopIteration:
                break
            self._buffer = self._buffer[self._offset :] + chunk
            self._offset = 0
        end = len(self._buffer) if size < 0 else self._offset + size
        data = self._buffer[self._offset : end]
        self._offset += len(data)
        return data


def _holders(api: docker.APIClient, engine_volume: str) -> int:
    """How many running containers hold the volume, after removing its helpers too old to
    be working for a live server (their server went away mid-operation)."""
    found = api.containers(all=True, filters={"volume": engine_volume})
    running = 0
    for container in found:
        labels = container.get("Labels") or {}
        if labels.get(LABEL_HELPER) == engine_volume:
            if time.time() - int(container.get("Created") or 0) > STALE_HELPER_SECONDS:
                log.warning(
                    "volume %s: removing helper %s left by a server that went away", engine_volume, container["Id"][:12]
                )
                api.remove_container(container["Id"], force=True)
            else:
                running += 1  # a live helper: it ends within HELPER_SECONDS
        elif container.get("State") == "running":
            running += 1
    return running


def _top_archive() -> bytes:
    info = tarfile.TarInfo("v")
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, RUNNER_USER, RUNNER_USER
    info.mtime = int(time.time())
    return info.tobuf(format=tarfile.PAX_FORMAT) + b"\0" * 1024


def _header_blocks(directory: str, temporary: str, size: int, mode: int) -> bytes:
    """Tar headers for the parent directories (owned by the runner's user) and the file."""
    blocks = b""
    now = int(time.time())
    parts = directory.split("/") if directory else []
    for depth in range(1, len(parts) + 1):
        info = tarfile.TarInfo("/".join(parts[:depth]))
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, RUNNER_USER, RUNNER_USER, now
        blocks += info.tobuf(format=tarfile.PAX_FORMAT)
    info = tarfile.TarInfo(temporary)
    info.size, info.mode, info.uid, info.gid, info.mtime = size, mode or 0o644, RUNNER_USER, RUNNER_USER, now
    return blocks + info.tobuf(format=tarfile.PAX_FORMAT)
