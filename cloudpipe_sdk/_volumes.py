"""`client.volumes`: your account's volumes (named storage on the server's Docker engine
that jobs mount, `volumes={"/data": "mydata"}`) and the files in them. `Volumes` for
`Client`, `AsyncVolumes` for `AsyncClient`; requests are made in
`cloudpipe_sdk._volume_calls`.

Paths inside a volume are relative, '/'-separated, without '.' or '..'; "" is the top.
Another account's volume is NotFound, like a missing one.

Example::

    client.volumes.create("mydata")
    client.volumes.put("mydata", "in.csv")                  # to mydata:in.csv
    client.shell("wc -l < /data/in.csv > /data/n.txt", volumes={"/data": "mydata"}).result()
    client.volumes.read("mydata", "n.txt")                  # b"1000\\n"
    client.volumes.ls("mydata")                             # [VolumeFile("in.csv", ...), ...]
    client.volumes.delete("mydata")
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from contextlib import aclosing, closing
from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import AsyncRetrying, Retrying, retry_if_exception, stop_after_delay

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_sdk import _volume_calls as calls
from cloudpipe_sdk._convert import volume_file_from_pb
from cloudpipe_sdk._errors import CloudpipeError, InvalidRequest
from cloudpipe_sdk._retry import WAIT
from cloudpipe_sdk._types import Volume, VolumeFile
from cloudpipe_sdk._volume_calls import Progress

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import AsyncTransport, Transport

log = logging.getLogger("cloudpipe_sdk.volumes")
LocalPath = str | os.PathLike[str]


def _in_use(exc: BaseException) -> bool:
    return isinstance(exc, InvalidRequest) and exc.code == "FAILED_PRECONDITION"


def _while_in_use(wait: float) -> Retrying:
    """For `delete(name, wait=...)`: try again, backing off as for an unavailable
    server, while the volume is in use, for up to `wait` seconds (0: once)."""
    return Retrying(retry=retry_if_exception(_in_use), stop=stop_after_delay(wait), wait=WAIT, reraise=True)


def _async_while_in_use(wait: float) -> AsyncRetrying:
    return AsyncRetrying(retry=retry_if_exception(_in_use), stop=stop_after_delay(wait), wait=WAIT, reraise=True)


def _listed(listing: calls.Listing, volume: str, path: str) -> builtins.list[VolumeFile]:
    if listing.truncated:
        where = f"{volume}:{path}" if path else volume
        log.warning("%s has more entries than the server lists (%d shown)", where, len(listing.entries))
    return listing.entries


def open_download(transport: Transport, volume: str, path: str) -> tuple[VolumeFile, Generator[bytes, None, None]]:
    """A file's entry and its bytes, chunk by chunk (close the iterator to stop early).
    Raises before returning when the file is not there (NotFound) or is a directory."""
    stream = transport.download(calls.download_request(volume, path))
    try:
        entry = calls.first_entry(next(stream, None))
    except BaseException:
        stream.close()
        raise

    def chunks() -> Generator[bytes, None, None]:
        with closing(stream):
            for chunk in stream:
                yield calls.chunk_data(chunk)

    return entry, chunks()


class Volumes:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    # -- volumes ---------------------------------------------------------------------

    def create(self, name: str, *, mount_path: str = "", description: str = "") -> Volume:
        """Make an empty volume. Names: lower-case letters, digits, '_', '.', '-', at
        most 63, starting with a letter or digit. AlreadyExists when you have one of
        that name; ResourceExhausted past the server's count per account. `mount_path`
        (an absolute path) is where multyvac jobs naming the volume mount it."""
        return self._transport.call(calls.create_volume(name, mount_path, description))

    def get(self, name: str) -> Volume:
        """One of your volumes, with its size counted now (NotFound if you have none
        of that name)."""
        return self._transport.call(calls.get_volume(name))

    def list(self) -> builtins.list[Volume]:
        """Your volumes, by name (sizes not counted: 0)."""
        return self._transport.call(calls.list_volumes())

    def delete(self, name: str, *, wait: float = 0) -> None:
        """Remove a volume and everything in it. A volume in use by a job is refused
        (InvalidRequest, `code` "FAILED_PRECONDITION"), also for a moment after the job
        ended, while its container is removed; `wait` keeps trying for up to that many
        seconds.

        Example::

            client.shell("make > /out/log", volumes={"/out": "scratch"}).result()
            client.volumes.delete("scratch", wait=30)
        """
        for attempt in _while_in_use(wait):
            with attempt:
                self._transport.call(calls.delete_volume(name))

    # -- files -----------------------------------------------------------------------

    def ls(self, volume: str, path: str = "") -> builtins.list[VolumeFile]:
        """The entries of one directory of a volume ("" is its top), by name; at most
        10,000 (a warning on the `cloudpipe_sdk.volumes` logger says when there are more)."""
        return _listed(self._transport.call(calls.list_files(volume, path)), volume, path)

    def put(
        self,
        volume: str,
        local_path: LocalPath,
        remote_path: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> VolumeFile:
        """Upload a local file to `remote_path` (default: its name, at the volume's
        top), streamed in 1 MiB chunks, with its permission bits; parent directories are
        made and a file there is replaced. The file appears whole or not at all.
        `progress(sent, total)` is called after each chunk. ResourceExhausted when the
        volume would grow past the server's byte quota.

        Example::

            client.volumes.put("mydata", "model.bin", "models/v1.bin")
        """
        reader = calls.FileReader(calls.LocalFile.of(local_path, remote_path), progress)
        try:
            entry = self._transport.upload(lambda: calls.file_requests(volume, reader))
        except CloudpipeError:
            reader.check()
            raise
        reader.check()
        return volume_file_from_pb(entry)

    def put_bytes(self, volume: str, remote_path: str, data: bytes) -> VolumeFile:
        """Write `data` to `remote_path` (mode 0644), as `put` does a file."""
        return volume_file_from_pb(
            self._transport.upload(lambda: calls.bytes_requests(volume, remote_path, bytes(data)))
        )

    def get_file(
        self, volume: str, remote_path: str, local_path: LocalPath, *, progress: Progress | None = None
    ) -> Path:
        """Download a file to `local_path` (into it, under the file's name, when it is a
        directory), with the file's permission bits; returns the path written. The bytes
        go to a temporary file beside it, renamed over it once complete: a download cut
        short leaves no half file. `progress(received, total)` after each chunk.

        Example::

            client.volumes.get_file("mydata", "out/result.csv", ".")    # ./result.csv
        """
        entry, chunks = open_download(self._transport, volume, remote_path)
        with closing(chunks):
            part = calls.PartFile(calls.destination(local_path, remote_path), entry)
            try:
                received = 0
                for chunk in chunks:
                    part.write(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received, entry.size_bytes)
                part.commit()
            except BaseException:
                part.discard()
                raise
        return part.target

    def read(self, volume: str, remote_path: str) -> bytes:
        """A file's bytes (held in memory: for large files, `get_file`)."""
        _, chunks = open_download(self._transport, volume, remote_path)
        with closing(chunks):
            return b"".join(chunks)

    def mkdir(self, volume: str, path: str) -> VolumeFile:
        """Make a directory and any missing parents (done if it is one already;
        InvalidRequest, `code` "FAILED_PRECONDITION", when a file is in the way)."""
        return self._transport.call(calls.make_directory(volume, path))

    def rm(self, volume: str, path: str) -> None:
        """Remove a file, or a directory with everything under it (NotFound if nothing
        is there)."""
        self._transport.call(calls.remove_file(volume, path))


async def _file_requests(volume: str, reader: calls.FileReader) -> AsyncIterator[pb.UploadRequest]:
    """As `calls.file_requests`, the file read in a thread."""
    yield reader.start(volume)
    await asyncio.to_thread(reader.begin)
    try:
        while chunk := await asyncio.to_thread(reader.next_chunk):
            yield calls.data(chunk)
            reader.sent()
    finally:
        reader.close()


async def _bytes_requests(volume: str, remote_path: str, data: bytes) -> AsyncIterator[pb.UploadRequest]:
    for request in calls.bytes_requests(volume, remote_path, data):
        yield request


async def _open_download(
    transport: AsyncTransport, volume: str, path: str
) -> tuple[VolumeFile, AsyncGenerator[bytes, None]]:
    """As `open_download`."""
    stream = transport.download(calls.download_request(volume, path))
    try:
        entry = calls.first_entry(await anext(stream, None))
    except BaseException:
        await stream.aclose()
        raise

    async def chunks() -> AsyncGenerator[bytes, None]:
        async with aclosing(stream):
            async for chunk in stream:
                yield calls.chunk_data(chunk)

    return entry, chunks()


class AsyncVolumes:
    """As `Volumes`, awaited; local files are read and written in a thread."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def create(self, name: str, *, mount_path: str = "", description: str = "") -> Volume:
        return await self._transport.call(calls.create_volume(name, mount_path, description))

    async def get(self, name: str) -> Volume:
        return await self._transport.call(calls.get_volume(name))

    async def list(self) -> builtins.list[Volume]:
        return await self._transport.call(calls.list_volumes())

    async def delete(self, name: str, *, wait: float = 0) -> None:
        async for attempt in _async_while_in_use(wait):
            with attempt:
                await self._transport.call(calls.delete_volume(name))

    async def ls(self, volume: str, path: str = "") -> builtins.list[VolumeFile]:
        return _listed(await self._transport.call(calls.list_files(volume, path)), volume, path)

    async def put(
        self,
        volume: str,
        local_path: LocalPath,
        remote_path: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> VolumeFile:
        local = await asyncio.to_thread(calls.LocalFile.of, local_path, remote_path)
        reader = calls.FileReader(local, progress)
        try:
            entry = await self._transport.upload(lambda: _file_requests(volume, reader))
        except CloudpipeError:
            reader.check()
            raise
        reader.check()
        return volume_file_from_pb(entry)

    async def put_bytes(self, volume: str, remote_path: str, data: bytes) -> VolumeFile:
        entry = await self._transport.upload(lambda: _bytes_requests(volume, remote_path, bytes(data)))
        return volume_file_from_pb(entry)

    async def get_file(
        self, volume: str, remote_path: str, local_path: LocalPath, *, progress: Progress | None = None
    ) -> Path:
        entry, chunks = await _open_download(self._transport, volume, remote_path)
        async with aclosing(chunks):
            target = await asyncio.to_thread(calls.destination, local_path, remote_path)
            part = await asyncio.to_thread(calls.PartFile, target, entry)
            try:
                received = 0
                async for chunk in chunks:
                    await asyncio.to_thread(part.write, chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received, entry.size_bytes)
                await asyncio.to_thread(part.commit)
            except BaseException:
                await asyncio.to_thread(part.discard)
                raise
        return part.target

    async def read(self, volume: str, remote_path: str) -> bytes:
        _, chunks = await _open_download(self._transport, volume, remote_path)
        async with aclosing(chunks):
            return b"".join([chunk async for chunk in chunks])

    async def mkdir(self, volume: str, path: str) -> VolumeFile:
        return await self._transport.call(calls.make_directory(volume, path))

    async def rm(self, volume: str, path: str) -> None:
        await self._transport.call(calls.remove_file(volume, path))
