"""The SDK's uploads and downloads against a scripted VolumeService on loopback (a real
gRPC server in this process, no engine): an upload is sent again whole while the server
is UNAVAILABLE, a download started again until it begins; a download lost midway
raises Unavailable and leaves no file; a local file that changes while it is sent, or a
progress callback that raises, is what the caller sees, not the server's answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_proto.v1 import volumes_pb2_grpc as pb_grpc
from cloudpipe_sdk import AsyncClient, Client, InvalidRequest, Unavailable
from cloudpipe_sdk._uploading import ACCEPTED, ACCEPTED_KEY

MiB = 1 << 20


class Scripted(pb_grpc.VolumeServiceServicer):
    """Upload: accepts the start (the initial metadata the real server sends), then
    stores what a call received, after `fail_uploads` calls that end UNAVAILABLE once
    they have read everything. Download: `files[path]` in 1 MiB chunks, after
    `fail_downloads` calls that end UNAVAILABLE at once; `cut_after` chunks, then
    UNAVAILABLE, when set."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.starts: list[pb.UploadStart] = []
        self.fail_uploads = 0
        self.fail_downloads = 0
        self.cut_after: int | None = None
        self.lock = threading.Lock()

    def Upload(self, request_iterator: Iterator[pb.UploadRequest], context: grpc.ServicerContext) -> pb.FileEntry:
        start = next(request_iterator).start
        context.send_initial_metadata(((ACCEPTED_KEY, ACCEPTED),))  # as the real server does
        data = b"".join(message.data for message in request_iterator)
        with self.lock:
            self.starts.append(start)
            if self.fail_uploads:
                self.fail_uploads -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        if len(data) != start.size_bytes:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expected {start.size_bytes} bytes, got {len(data)}")
        self.files[start.path] = data
        return pb.FileEntry(path=start.path, size_bytes=len(data), mode=start.mode)

    def Download(self, request: pb.DownloadRequest, context: grpc.ServicerContext) -> Iterator[pb.DownloadChunk]:
        with self.lock:
            if self.fail_downloads:
                self.fail_downloads -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        if request.path not in self.files:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no file {request.path!r}")
        data = self.files[request.path]
        yield pb.DownloadChunk(entry=pb.FileEntry(path=request.path, size_bytes=len(data), mode=0o640))
        for number, at in enumerate(range(0, len(data), MiB)):
            if self.cut_after is not None and number == self.cut_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "lost")
            yield pb.DownloadChunk(data=data[at : at + MiB])


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Scripted, str]]:
    for name in ("CLOUDPIPE_ADDRESS", "CLOUDPIPE_API_KEY", "CLOUDPIPE_PROFILE", "CLOUDPIPE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDPIPE_CONFIG", str(tmp_path / "none.toml"))
    scripted = Scripted()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    pb_grpc.add_VolumeServiceServicer_to_server(scripted, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield scripted, f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def client(service: tuple[Scripted, str]) -> Iterator[Client]:
    with Client(service[1], retry_for=5) as made:
        yield made


def big_file(tmp_path: Path, size: int = 3 * MiB + 5) -> tuple[Path, bytes]:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    path.chmod(0o751)
    return path, data


def test_an_upload_is_sent_again_whole_while_the_server_is_unavailable(
    service: tuple[Scripted, str], client: Client, tmp_path: Path
) -> None:
    scripted, _ = service
    scripted.fail_uploads = 2
    path, data = big_file(tmp_path)
    seen: list[tuple[int, int]] = []
    entry = client.volumes.put("v", path, "in/big.bin", progress=lambda *told: seen.append(told))
    assert (entry.path, entry.size_bytes, entry.mode) == ("in/big.bin", len(data), 0o751)
    assert scripted.files["in/big.bin"] == data and len(scripted.starts) == 3
    started = {(s.volume, s.path, s.size_bytes, s.mode) for s in scripted.starts}
    assert started == {("v", "in/big.bin", len(data), 0o751)}
    assert seen[-1] == (len(data), len(data)) and seen.count((MiB, len(data))) == 3  # each attempt from the start


def test_a_download_is_started_again_until_it_begins(
    service: tuple[Scripted, str], client: Client, tmp_path: Path
) -> None:
    scripted, _ = service
    scripted.files["f"] = data = bytes(5 * MiB)
    scripted.fail_downloads = 2
    assert client.volumes.read("v", "f") == data
    scripted.fail_downloads = 1
    written = client.volumes.get_file("v", "f", tmp_path)
    assert written == tmp_path / "f" and written.read_bytes() == data and written.stat().st_mode & 0o777 == 0o640


def test_a_download_lost_midway_raises_unavailable_and_leaves_no_file(
    service: tuple[Scripted, str], client: Client, tmp_path: Path
) -> None:
    scripted, _ = service
    scripted.files["f"] = bytes(5 * MiB)
    scripted.cut_after = 2
    with pytest.raises(Unavailable):
        client.volumes.get_file("v", "f", tmp_path / "out.bin")
    with pytest.raises(Unavailable):
        client.volumes.read("v", "f")
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_shrinks_while_it_is_sent_says_so(
    service: tuple[Scripted, str], client: Client, tmp_path: Path
) -> None:
    path, data = big_file(tmp_path)

    def shrink(sent: int, total: int) -> None:
        if sent == MiB:
            path.write_bytes(data[: MiB + 10])

    with pytest.raises(InvalidRequest, match="changed while it was uploaded"):
        client.volumes.put("v", path, progress=shrink)
    assert service[0].files == {}


def test_a_progress_callback_that_raises_ends_the_upload_with_its_error(
    service: tuple[Scripted, str], client: Client, tmp_path: Path
) -> None:
    path, _ = big_file(tmp_path)

    def refuse(sent: int, total: int) -> None:
        raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here"):
        client.volumes.put("v", path, progress=refuse)
    assert service[0].files == {}


def test_the_async_client_retries_the_same_way(service: tuple[Scripted, str], tmp_path: Path) -> None:
    scripted, address = service
    path, data = big_file(tmp_path)

    async def main() -> None:
        async with AsyncClient(address, retry_for=5) as client:
            scripted.fail_uploads = 1
            assert (await client.volumes.put("v", path)).size_bytes == len(data)
            scripted.fail_downloads = 1
            assert await client.volumes.read("v", "big.bin") == data
            written = await client.volumes.get_file("v", "big.bin", tmp_path / "copy.bin")
            assert written.read_bytes() == data
            scripted.cut_after = 1
            with pytest.raises(Unavailable):
                await client.volumes.get_file("v", "big.bin", tmp_path / "cut.bin")

    asyncio.run(main())
    assert scripted.files["big.bin"] == data and not (tmp_path / "cut.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin", "copy.bin"]
