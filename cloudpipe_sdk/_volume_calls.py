"""The VolumeService calls: the unary ones as `Rpc`s, and what both clients' uploads
and downloads share (the messages of an upload from a local file or from bytes, read
in 1 MiB chunks; the first message of a download). The I/O is in `cloudpipe_sdk._volumes`."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_sdk._convert import volume_file_from_pb, volume_from_pb
from cloudpipe_sdk._errors import InvalidRequest, ProtocolError
from cloudpipe_sdk._rpc import Rpc
from cloudpipe_sdk._types import Volume, VolumeFile

# The most an upload message carries (the server's limit too).
CHUNK = 1 << 20
# progress(bytes_so_far, total): after each chunk sent or received.
Progress = Callable[[int, int], None]


def create_volume(name: str, mount_path: str = "", description: str = "") -> Rpc[Volume]:
    # not retried: a retry of one that was made would say ALREADY_EXISTS
    request = pb.CreateVolumeRequest(name=name, mount_path=mount_path, description=description)
    return Rpc("volumes", "Create", request, volume_from_pb, retry=False)


def get_volume(name: str) -> Rpc[Volume]:
    return Rpc("volumes", "Get", pb.GetVolumeRequest(name=name), volume_from_pb)


def list_volumes() -> Rpc[list[Volume]]:
    return Rpc("volumes", "List", pb.ListVolumesRequest(), lambda r: [volume_from_pb(v) for v in r.volumes])


def delete_volume(name: str) -> Rpc[None]:
    return Rpc("volumes", "Delete", pb.DeleteVolumeRequest(name=name), lambda _: None, retry=False)


@dataclass(frozen=True)
class Listing:
    entries: list[VolumeFile]
    truncated: bool


def list_files(volume: str, path: str) -> Rpc[Listing]:
    def parse(answer: pb.ListFilesResponse) -> Listing:
        return Listing([volume_file_from_pb(e) for e in answer.entries], answer.truncated)

    return Rpc("volumes", "ListFiles", pb.ListFilesRequest(volume=volume, path=path), parse)


def make_directory(volume: str, path: str) -> Rpc[VolumeFile]:
    # retried: making a directory that exists is done
    return Rpc("volumes", "MakeDirectory", pb.MakeDirectoryRequest(volume=volume, path=path), volume_file_from_pb)


def remove_file(volume: str, path: str) -> Rpc[None]:
    return Rpc("volumes", "RemoveFile", pb.RemoveFileRequest(volume=volume, path=path), lambda _: None, retry=False)


# -- uploads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalFile:
    """A local file to upload: its size and permission bits now, and where it goes
    (`remote`, by default its name at the volume's top)."""

    path: Path
    remote: str
    size: int
    mode: int

    @classmethod
    def of(cls, local_path: str | os.PathLike[str], remote_path: str | None) -> LocalFile:
        path = Path(local_path)
        try:
            info = path.stat()
        except OSError as exc:
            raise InvalidRequest(f"cannot upload {str(path)!r}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):
            raise InvalidRequest(f"cannot upload {str(path)!r}: not a regular file (put uploads one file)")
        return cls(path, remote_path if remote_path is not None else path.name, info.st_size, info.st_mode & 0o777)


def start(volume: str, remote: str, size: int, mode: int) -> pb.UploadRequest:
    return pb.UploadRequest(start=pb.UploadStart(volume=volume, path=remote, size_bytes=size, mode=mode))


def data(chunk: bytes) -> pb.UploadRequest:
    return pb.UploadRequest(data=chunk)


class FileReader:
    """Reads a local file for an upload, chunk by chunk, at most the size the upload
    announced. A failure here (the file cannot be read, it shrank, `progress` raised)
    ends the chunks early, so the server refuses the upload, and is kept in `error` for
    the caller to raise instead of the server's answer: an exception inside a request
    stream would reach the caller as UNKNOWN. Plain blocking calls: the async client
    runs them in a thread."""

    def __init__(self, local: LocalFile, progress: Progress | None) -> None:
        self.local = local
        self.error: BaseException | None = None
        self._progress = progress
        self._handle: BinaryIO | None = None
        self._sent = 0

    def begin(self) -> None:
        """(Re)open the file, for a new attempt."""
        self.close()
        self.error, self._sent = None, 0
        try:
            self._handle = self.local.path.open("rb")
        except OSError as exc:
            self.error = InvalidRequest(f"cannot read {str(self.local.path)!r}: {exc.strerror or exc}")

    def next_chunk(self) -> bytes:
        """The next chunk; b"" at the end (or after a failure). Closes the file at the end."""
        handle = self._handle
        if handle is None or self._sent >= self.local.size:
            self.close()
            return b""
        try:
            chunk = handle.read(min(CHUNK, self.local.size - self._sent))
        except OSError as exc:
            self.error = InvalidRequest(f"cannot read {str(self.local.path)!r}: {exc.strerror or exc}")
            chunk = b""
        if not chunk:
            if self.error is None:
                self.error = InvalidRequest(
                    f"{str(self.local.path)!r} changed while it was uploaded: "
                    f"it has {self._sent} of the {self.local.size} bytes it had"
                )
            self.close()
        self._sent += len(chunk)
        return chunk

    def sent(self) -> None:
        """Call after a chunk went: tells `progress` (a failure of it ends the upload)."""
        if self._progress is not None:
            try:
                self._progress(self._sent, self.local.size)
            except Exception as exc:  # kept: raised by the caller after the call
                self.error = exc
                self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def start(self, volume: str) -> pb.UploadRequest:
        return start(volume, self.local.remote, self.local.size, self.local.mode)

    def check(self) -> None:
        """Raise the failure that ended the chunks early, if one did."""
        if self.error is not None:
            raise self.error


def file_requests(volume: str, reader: FileReader) -> Iterator[pb.UploadRequest]:
    """The messages of an upload of the reader's file (for the sync client)."""
    yield reader.start(volume)
    reader.begin()
    try:
        while chunk := reader.next_chunk():
            yield data(chunk)
            reader.sent()
    finally:
        reader.close()


def bytes_requests(volume: str, remote: str, payload: bytes) -> Iterator[pb.UploadRequest]:
    """The messages of an upload of `payload` (mode 0644)."""
    yield start(volume, remote, len(payload), 0o644)
    view = memoryview(payload)
    for at in range(0, len(payload), CHUNK):
        yield data(bytes(view[at : at + CHUNK]))


# -- downloads ---------------------------------------------------------------------------


def download_request(volume: str, path: str) -> pb.DownloadRequest:
    return pb.DownloadRequest(volume=volume, path=path)


def first_entry(chunk: pb.DownloadChunk | None) -> VolumeFile:
    """The file's entry, which a download sends first."""
    if chunk is None or chunk.WhichOneof("part") != "entry":
        raise ProtocolError("a download began without the file's entry: the server is not one this SDK knows")
    return volume_file_from_pb(chunk.entry)


def chunk_data(chunk: pb.DownloadChunk) -> bytes:
    if chunk.WhichOneof("part") != "data":
        raise ProtocolError("a download sent a second entry: the server is not one this SDK knows")
    return chunk.data


def download_mode(entry: VolumeFile) -> int:
    """The permission bits a downloaded file gets: the volume file's (0644 if none)."""
    return (entry.mode & 0o777) or 0o644


def destination(local_path: str | os.PathLike[str], remote_path: str) -> Path:
    """Where a download goes: `local_path`, or inside it when it is a directory."""
    target = Path(local_path)
    if target.is_dir():
        return target / Path(remote_path.rstrip("/")).name
    return target


class PartFile:
    """A download's local file, written beside its destination under a temporary name
    and renamed over it only when complete (`commit`), so a cut download leaves no
    half file; `discard` removes it. Plain blocking calls, as `FileReader`."""

    def __init__(self, target: Path, entry: VolumeFile) -> None:
        self.target = target
        self._mode = download_mode(entry)
        try:
            descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        except OSError as exc:
            raise InvalidRequest(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
        self._path = Path(name)
        self._handle: BinaryIO = os.fdopen(descriptor, "wb")

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)

    def commit(self) -> None:
        self._handle.close()
        os.chmod(self._path, self._mode)
        os.replace(self._path, self.target)

    def discard(self) -> None:
        self._handle.close()
        self._path.unlink(missing_ok=True)
