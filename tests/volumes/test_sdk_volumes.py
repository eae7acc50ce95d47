"""`client.volumes` and `volumes=` job options on the real server: files go in and come
out whole (a multi-MiB file, by sha256), with their permission bits; a download cut
short leaves no half file; jobs read and write the volumes they mount, read-only ones
refuse writes; errors are the SDK's typed ones, another account's volume is NotFound."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudpipe_sdk import (
    AlreadyExists,
    AsyncClient,
    Client,
    InvalidRequest,
    JobFailed,
    NotFound,
    ResourceExhausted,
    Volume,
    VolumeFile,
)
from tests.support import ServerProcess
from tests.volumes.sdk_support import tenant

pytestmark = pytest.mark.docker


@pytest.fixture
def alice(volume_server: ServerProcess) -> Iterator[Client]:
    with tenant(volume_server, "alice") as client:
        yield client


@pytest.fixture
def bob(volume_server: ServerProcess) -> Iterator[Client]:
    with tenant(volume_server, "bob") as client:
        yield client


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_files_go_in_and_come_out_whole(alice: Client, tmp_path: Path) -> None:
    made = alice.volumes.create("data")
    assert isinstance(made, Volume) and made.name == "data" and made.created_at is not None
    big = os.urandom((5 << 20) + 12345)  # six upload messages, the last one short
    local = tmp_path / "blob.bin"
    local.write_bytes(big)
    local.chmod(0o750)
    seen: list[tuple[int, int]] = []
    entry = alice.volumes.put("data", local, "in/deep/blob.bin", progress=lambda *told: seen.append(told))
    assert isinstance(entry, VolumeFile)
    assert (entry.path, entry.directory, entry.size_bytes, entry.mode & 0o777) == (
        "in/deep/blob.bin",
        False,
        len(big),
        0o750,
    )
    assert len(seen) == 6 and seen[-1] == (len(big), len(big)) and seen[0] == (1 << 20, len(big))
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    assert alice.volumes.put("data", script).path == "run.sh"  # by default: its name, at the top
    alice.volumes.put_bytes("data", "notes.txt", b"hello\n")

    assert [(f.path, f.directory, f.mode & 0o777) for f in alice.volumes.ls("data")] == [
        ("in", True, 0o755),
        ("notes.txt", False, 0o644),
        ("run.sh", False, 0o755),
    ]
    [deep] = alice.volumes.ls("data", "in/deep")
    assert (deep.path, deep.size_bytes, deep.modified_at is not None) == ("in/deep/blob.bin", len(big), True)
    assert alice.volumes.read("data", "notes.txt") == b"hello\n"
    assert sha256(alice.volumes.read("data", "in/deep/blob.bin")) == sha256(big)

    out = alice.volumes.get_file("data", "in/deep/blob.bin", tmp_path / "copy.bin")
    assert out == tmp_path / "copy.bin" and sha256(out.read_bytes()) == sha256(big)
    assert out.stat().st_mode & 0o777 == 0o750
    (tmp_path / "into").mkdir()
    assert alice.volumes.get_file("data", "in/deep/blob.bin", tmp_path / "into") == tmp_path / "into" / "blob.bin"
    assert sha256((tmp_path / "into" / "blob.bin").read_bytes()) == sha256(big)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "copy.bin", "into", "run.sh"]  # nothing else

    assert alice.volumes.get("data").size_bytes >= len(big)
    assert [v.name for v in alice.volumes.list()] == ["data"]
    alice.volumes.rm("data", "in")
    assert [f.path for f in alice.volumes.ls("data")] == ["notes.txt", "run.sh"]
    alice.volumes.delete("data")
    assert alice.volumes.list() == []


def test_a_download_cut_short_leaves_no_half_file(alice: Client, tmp_path: Path) -> None:
    alice.volumes.create("cut")
    alice.volumes.put_bytes("cut", "big.bin", os.urandom(3 << 20))
    target = tmp_path / "big.bin"
    target.write_bytes(b"the old file")

    def stop(received: int, total: int) -> None:
        raise KeyboardInterrupt  # as a user pressing ^C after the first chunk

    with pytest.raises(KeyboardInterrupt):
        alice.volumes.get_file("cut", "big.bin", target, progress=stop)
    assert target.read_bytes() == b"the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]
    with pytest.raises(NotFound):
        alice.volumes.get_file("cut", "absent.bin", tmp_path / "absent.bin")
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]


def test_errors_are_the_sdks_typed_ones(alice: Client, bob: Client, tmp_path: Path) -> None:
    alice.volumes.create("private")
    alice.volumes.put_bytes("private", "secret.txt", b"alice only")
    for call in (
        lambda: bob.volumes.get("private"),
        lambda: bob.volumes.read("private", "secret.txt"),
        lambda: bob.volumes.ls("private"),
        lambda: bob.volumes.put_bytes("private", "x", b"x"),
        lambda: bob.volumes.rm("private", "secret.txt"),
        lambda: bob.volumes.delete("private"),
        lambda: alice.volumes.read("private", "absent.txt"),
        lambda: alice.volumes.rm("private", "absent.txt"),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(AlreadyExists):
        alice.volumes.create("private")
    with pytest.raises(InvalidRequest):
        alice.volumes.create("Not A Name")
    with pytest.raises(InvalidRequest):
        alice.volumes.put_bytes("private", "../escape", b"x")
    with pytest.raises(InvalidRequest) as is_directory:
        alice.volumes.read("private", "")
    assert is_directory.value.code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION")
    with pytest.raises(InvalidRequest, match="not a regular file"):
        alice.volumes.put("private", tmp_path)
    with pytest.raises(InvalidRequest, match="cannot upload"):
        alice.volumes.put("private", tmp_path / "absent")
    with pytest.raises(ResourceExhausted):  # the server's quota: 8 MiB per volume
        alice.volumes.put_bytes("private", "huge.bin", bytes(9 << 20))
    alice.volumes.create("second")
    alice.volumes.create("third")
    with pytest.raises(ResourceExhausted):  # and 3 volumes per account
        alice.volumes.create("fourth")
    assert [v.name for v in alice.volumes.list()] == ["private", "second", "third"]
    assert alice.volumes.read("private", "secret.txt") == b"alice only"


def test_a_job_reads_and_writes_the_volume_it_mounts(alice: Client) -> None:
    alice.volumes.create("work")
    alice.volumes.put_bytes("work", "in.txt", b"one two three\n")
    job = alice.shell("cat /data/in.txt > /data/out.txt", volumes={"/data": "work"})
    assert job.result(timeout=120) == b""
    assert job.snapshot.spec.volumes == ("work:/data",)
    assert alice.volumes.read("work", "out.txt") == b"one two three\n"
    written = {f.path: f for f in alice.volumes.ls("work")}["out.txt"]
    assert written.size_bytes == 14
    # function jobs and maps take the option too
    listed = alice.with_options(volumes={"/w": "work:ro"}).submit(os.listdir, "/w").result(timeout=120)
    assert sorted(listed) == ["in.txt", "out.txt"]
    sizes = list(alice.map(os.path.getsize, ["/w/in.txt", "/w/out.txt"], volumes={"/w": "work"}, timeout=120))
    assert sizes == [14, 14]


def test_a_read_only_mount_refuses_writes(alice: Client) -> None:
    alice.volumes.create("ref")
    alice.volumes.put_bytes("ref", "table.csv", b"a,b\n")
    job = alice.shell("cat /ref/table.csv; echo x > /ref/new.txt", volumes={"/ref": "ref:ro"})
    with pytest.raises(JobFailed) as failed:
        job.result(timeout=120)
    assert "Read-only file system" in failed.value.stderr_tail and failed.value.stdout_tail == "a,b"
    assert [f.path for f in alice.volumes.ls("ref")] == ["table.csv"]


def test_a_volume_in_use_is_deleted_only_when_its_job_ends(alice: Client) -> None:
    alice.volumes.create("busy")
    job = alice.shell("touch /v/started; sleep 4", volumes={"/v": "busy"})
    deadline = time.monotonic() + 60
    while not alice.volumes.ls("busy"):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    with pytest.raises(InvalidRequest) as busy:
        alice.volumes.delete("busy")
    assert busy.value.code == "FAILED_PRECONDITION"
    alice.volumes.delete("busy", wait=60)  # tries again until the job's container is gone
    assert job.refresh().status.finished and job.result() == b"" and alice.volumes.list() == []


def test_a_job_naming_a_volume_it_lacks_is_refused_at_submit(alice: Client, bob: Client) -> None:
    alice.volumes.create("mine")
    with pytest.raises(NotFound):
        bob.shell("true", volumes={"/data": "mine"})
    with pytest.raises(NotFound):
        alice.shell("true", volumes={"/data": "absent"})


def test_the_async_client_moves_files_too(volume_server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom((2 << 20) + 7)
    (tmp_path / "up.bin").write_bytes(data)

    async def main(account: str) -> None:
        async with AsyncClient(volume_server.address, account=account) as client:
            await client.volumes.create("aio")
            entry = await client.volumes.put("aio", tmp_path / "up.bin", "up.bin")
            assert entry.size_bytes == len(data)
            await client.volumes.put_bytes("aio", "small.txt", b"small")
            assert [f.path for f in await client.volumes.ls("aio")] == ["small.txt", "up.bin"]
            assert await client.volumes.read("aio", "small.txt") == b"small"
            down = await client.volumes.get_file("aio", "up.bin", tmp_path / "down.bin")
            assert sha256(down.read_bytes()) == sha256(data)
            with pytest.raises(NotFound):
                await client.volumes.read("aio", "absent")
            job = await client.shell("wc -c < /v/up.bin", volumes={"/v": "aio"})
            assert await job.result(timeout=120) == f"{len(data)}\n".encode()

    with tenant(volume_server, "carol") as client:
        asyncio.run(main(client.config.account))


def test_a_volume_has_a_mount_path_for_multyvac_and_directories_are_made(alice: Client) -> None:
    made = alice.volumes.create("deps", mount_path="/pymodules", description="my modules")
    assert (made.mount_path, made.description) == ("/pymodules", "my modules")
    assert alice.volumes.get("deps").mount_path == "/pymodules"
    assert [v.mount_path for v in alice.volumes.list()] == ["/pymodules"]
    with pytest.raises(InvalidRequest):
        alice.volumes.create("bad", mount_path="/proc/x")
    made_dir = alice.volumes.mkdir("deps", "pkg/sub")
    assert (made_dir.path, made_dir.directory) == ("pkg/sub", True)
    assert alice.volumes.mkdir("deps", "pkg").directory  # already one: done
    alice.volumes.put_bytes("deps", "pkg/mod.py", b"X = 1\n")
    with pytest.raises(InvalidRequest) as blocked:
        alice.volumes.mkdir("deps", "pkg/mod.py")
    assert blocked.value.code == "FAILED_PRECONDITION"
    assert [(f.path, f.directory) for f in alice.volumes.ls("deps", "pkg")] == [
        ("pkg/mod.py", False),
        ("pkg/sub", True),
    ]

    async def main() -> None:
        async with AsyncClient(alice.config.address, account=alice.config.account) as client:
            assert (await client.volumes.mkdir("deps", "from-async")).directory
            assert (await client.volumes.create("deps2", mount_path="/other")).mount_path == "/other"

    asyncio.run(main())
