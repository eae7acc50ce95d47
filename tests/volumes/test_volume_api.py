"""VolumeService over gRPC on the real engine: volumes made, listed and deleted; files
uploaded in chunks, listed, downloaded and removed; another account's volume looks
missing; bad paths, quotas and short uploads get a clear status and leave nothing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import volumes_pb2 as pb
from tests.support import code_of
from tests.volumes.conftest import Tenant

pytestmark = pytest.mark.docker


def upload_requests(
    volume: str, path: str, data: bytes, chunk: int = 1 << 20, size: int | None = None
) -> Iterator[pb.UploadRequest]:
    yield pb.UploadRequest(
        start=pb.UploadStart(volume=volume, path=path, size_bytes=len(data) if size is None else size)
    )
    for at in range(0, len(data), chunk):
        yield pb.UploadRequest(data=data[at : at + chunk])


def upload(tenant: Tenant, volume: str, path: str, data: bytes, **kw: int) -> pb.FileEntry:
    return tenant.volumes.Upload(upload_requests(volume, path, data, **kw), metadata=tenant.metadata, timeout=60)  # type: ignore[no-any-return]


def download(tenant: Tenant, volume: str, path: str) -> tuple[pb.FileEntry, bytes]:
    chunks = list(
        tenant.volumes.Download(pb.DownloadRequest(volume=volume, path=path), metadata=tenant.metadata, timeout=60)
    )
    assert chunks[0].WhichOneof("part") == "entry"
    return chunks[0].entry, b"".join(c.data for c in chunks[1:])


def listing(tenant: Tenant, volume: str, path: str = "") -> list[tuple[str, bool, int]]:
    answer = tenant.volumes.ListFiles(
        pb.ListFilesRequest(volume=volume, path=path), metadata=tenant.metadata, timeout=30
    )
    return [(e.path, e.directory, e.size_bytes) for e in answer.entries]


def test_files_go_in_and_come_out_of_a_volume(alice: Tenant) -> None:
    made = alice.volumes.Create(pb.CreateVolumeRequest(name="data"), metadata=alice.metadata, timeout=60)
    assert made.name == "data" and made.created_at.seconds > 0
    big = os.urandom(3 << 20) + b"tail"  # several messages
    entry = upload(alice, "data", "in/deep/blob.bin", big, chunk=256 << 10)
    assert (entry.path, entry.size_bytes) == ("in/deep/blob.bin", len(big))
    upload(alice, "data", "notes.txt", b"hello\n")
    upload(alice, "data", "empty", b"")
    assert listing(alice, "data") == [("empty", False, 0), ("in", True, 4096), ("notes.txt", False, 6)]
    assert listing(alice, "data", "in/deep") == [("in/deep/blob.bin", False, len(big))]
    got_entry, got = download(alice, "data", "in/deep/blob.bin")
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest() and got_entry.size_bytes == len(big)
    assert download(alice, "data", "empty")[1] == b""
    upload(alice, "data", "notes.txt", b"replaced\n")  # over an existing file
    assert download(alice, "data", "notes.txt")[1] == b"replaced\n"
    got_volume = alice.volumes.Get(pb.GetVolumeRequest(name="data"), metadata=alice.metadata, timeout=60)
    assert got_volume.size_bytes >= len(big)
    alice.volumes.RemoveFile(pb.RemoveFileRequest(volume="data", path="in"), metadata=alice.metadata, timeout=30)
    assert listing(alice, "data") == [("empty", False, 0), ("notes.txt", False, 9)]
    listed = alice.volumes.List(pb.ListVolumesRequest(), metadata=alice.metadata, timeout=30).volumes
    assert [v.name for v in listed] == ["data"]
    alice.volumes.Delete(pb.DeleteVolumeRequest(name="data"), metadata=alice.metadata, timeout=60)
    assert not alice.volumes.List(pb.ListVolumesRequest(), metadata=alice.metadata, timeout=30).volumes


def test_another_accounts_volume_looks_missing(alice: Tenant, bob: Tenant) -> None:
    alice.volumes.Create(pb.CreateVolumeRequest(name="private"), metadata=alice.metadata, timeout=60)
    upload(alice, "private", "secret.txt", b"alice only")
    missing = grpc.StatusCode.NOT_FOUND
    md = bob.metadata
    assert code_of(lambda: bob.volumes.Get(pb.GetVolumeRequest(name="private"), metadata=md, timeout=30)) == missing
    assert code_of(lambda: download(bob, "private", "secret.txt")) == missing
    assert code_of(lambda: listing(bob, "private")) == missing
    assert code_of(lambda: upload(bob, "private", "x", b"x")) == missing
    assert (
        code_of(lambda: bob.volumes.Delete(pb.DeleteVolumeRequest(name="private"), metadata=md, timeout=30)) == missing
    )
    assert not bob.volumes.List(pb.ListVolumesRequest(), metadata=md, timeout=30).volumes
    # bob's own "private" is another volume
    bob.volumes.Create(pb.CreateVolumeRequest(name="private"), metadata=md, timeout=60)
    assert listing(bob, "private") == []
    assert download(alice, "private", "secret.txt")[1] == b"alice only"


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", "", "a\0b", "x" * 5000])
def test_bad_paths_are_invalid_arguments(alice: Tenant, path: str) -> None:
    alice.volumes.Create(pb.CreateVolumeRequest(name="paths"), metadata=alice.metadata, timeout=60)
    assert code_of(lambda: upload(alice, "paths", path, b"x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: download(alice, "paths", path)) == grpc.StatusCode.INVALID_ARGUMENT
    assert listing(alice, "paths") == []


def test_bad_names_quotas_and_short_uploads(alice: Tenant) -> None:
    md = alice.metadata
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for name in ("", "Upper", "-dash", "a/b", "x" * 64, "a b"):
        with pytest.raises(grpc.RpcError) as raised:
            alice.volumes.Create(pb.CreateVolumeRequest(name=name), metadata=md, timeout=30)
        assert raised.value.code() == invalid, name
    alice.volumes.Create(pb.CreateVolumeRequest(name="v1"), metadata=md, timeout=60)
    assert (
        code_of(lambda: alice.volumes.Create(pb.CreateVolumeRequest(name="v1"), metadata=md, timeout=30))
        == grpc.StatusCode.ALREADY_EXISTS
    )
    alice.volumes.Create(pb.CreateVolumeRequest(name="v2"), metadata=md, timeout=60)
    alice.volumes.Create(pb.CreateVolumeRequest(name="v3"), metadata=md, timeout=60)
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (
        code_of(lambda: alice.volumes.Create(pb.CreateVolumeRequest(name="v4"), metadata=md, timeout=30)) == exhausted
    )
    # the server's quota is 8 MiB per volume
    assert code_of(lambda: upload(alice, "v1", "huge", b"", size=9 << 20)) == exhausted
    assert code_of(lambda: upload(alice, "v1", "short", b"abc", size=10)) == invalid
    assert code_of(lambda: upload(alice, "v1", "long", b"abcdef", size=3)) == invalid
    only_start = iter([pb.UploadRequest(data=b"no start")])
    assert code_of(lambda: alice.volumes.Upload(only_start, metadata=md, timeout=30)) == invalid
    assert listing(alice, "v1") == []  # no half files, no temporaries left
    assert code_of(lambda: download(alice, "v1", "nothing")) == grpc.StatusCode.NOT_FOUND
    upload(alice, "v1", "dir/file", b"x")
    assert code_of(lambda: download(alice, "v1", "dir")) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: upload(alice, "v1", "dir", b"x")) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: listing(alice, "v1", "dir/file")) == grpc.StatusCode.FAILED_PRECONDITION
    remove = pb.RemoveFileRequest(volume="v1", path="absent")
    assert code_of(lambda: alice.volumes.RemoveFile(remove, metadata=md, timeout=30)) == grpc.StatusCode.NOT_FOUND


def test_the_byte_quota_counts_what_the_volume_holds(alice: Tenant) -> None:
    alice.volumes.Create(pb.CreateVolumeRequest(name="full"), metadata=alice.metadata, timeout=60)
    upload(alice, "full", "a.bin", os.urandom(5 << 20))
    # 5 MiB more would pass the 8 MiB quota: refused, and nothing of it kept
    assert code_of(lambda: upload(alice, "full", "b.bin", os.urandom(5 << 20))) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert listing(alice, "full") == [("a.bin", False, 5 << 20)]
    # replacing a file counts the new one instead of the old
    upload(alice, "full", "a.bin", os.urandom(6 << 20))
    assert listing(alice, "full") == [("a.bin", False, 6 << 20)]


def test_a_volume_keeps_its_mount_path_and_description_and_directories_are_made(alice: Tenant, bob: Tenant) -> None:
    md = alice.metadata
    made = alice.volumes.Create(
        pb.CreateVolumeRequest(name="deps", mount_path="/pymodules/", description="modules of my laptop"),
        metadata=md,
        timeout=60,
    )
    assert (made.mount_path, made.description) == ("/pymodules", "modules of my laptop")  # normalised
    got = alice.volumes.Get(pb.GetVolumeRequest(name="deps"), metadata=md, timeout=30)
    assert (got.mount_path, got.description) == ("/pymodules", "modules of my laptop")
    (listed,) = alice.volumes.List(pb.ListVolumesRequest(), metadata=md, timeout=30).volumes
    assert (listed.mount_path, listed.description) == ("/pymodules", "modules of my laptop")
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for bad in ("relative", "/", "/proc/x", "/a/../b", "/a\nb"):
        request = pb.CreateVolumeRequest(name="other", mount_path=bad)
        assert code_of(lambda r=request: alice.volumes.Create(r, metadata=md, timeout=30)) == invalid, bad
    long_text = pb.CreateVolumeRequest(name="other", description="d" * 1025)
    assert code_of(lambda: alice.volumes.Create(long_text, metadata=md, timeout=30)) == invalid

    made_dir = alice.volumes.MakeDirectory(
        pb.MakeDirectoryRequest(volume="deps", path="a/b/c"), metadata=md, timeout=60
    )
    assert (made_dir.path, made_dir.directory) == ("a/b/c", True) and made_dir.mode & 0o700 == 0o700
    dashed = alice.volumes.MakeDirectory(pb.MakeDirectoryRequest(volume="deps", path="-x"), metadata=md, timeout=60)
    assert (dashed.path, dashed.directory) == ("-x", True)  # a name like an option is a name
    again = alice.volumes.MakeDirectory(pb.MakeDirectoryRequest(volume="deps", path="a/b"), metadata=md, timeout=60)
    assert again.directory  # an existing directory: done
    assert [(path, directory) for path, directory, _size in listing(alice, "deps", "a")] == [("a/b", True)]
    upload(alice, "deps", "a/file", b"x")
    for blocked in ("a/file", "a/file/below"):
        request = pb.MakeDirectoryRequest(volume="deps", path=blocked)
        code = code_of(lambda r=request: alice.volumes.MakeDirectory(r, metadata=md, timeout=60))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, blocked
    for path in ("", "../x", "/abs"):
        request = pb.MakeDirectoryRequest(volume="deps", path=path)
        assert code_of(lambda r=request: alice.volumes.MakeDirectory(r, metadata=md, timeout=30)) == invalid, path
    theirs = pb.MakeDirectoryRequest(volume="deps", path="x")
    assert (
        code_of(lambda: bob.volumes.MakeDirectory(theirs, metadata=bob.metadata, timeout=30))
        == grpc.StatusCode.NOT_FOUND
    )
