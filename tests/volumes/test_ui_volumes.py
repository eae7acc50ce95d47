"""The UI's volumes routes (/ui/api/volumes, /ui/api/volume/...) against a real server
on the Docker engine, through a real gateway: an account makes, browses and deletes its
volumes and downloads the exact bytes of its files; another account's volume looks
missing to every route; bad paths are 400, a directory is no download (409); uploads
stream the body into a file, whole, and one over the volume's quota is refused."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudpipe_proto.v1 import volumes_pb2 as pb
from tests.gateway.support import GatewayProcess, assert_api_error, start_gateway
from tests.support import ServerProcess
from tests.volumes.conftest import Tenant
from tests.volumes.test_volume_api import download, listing, upload

pytestmark = pytest.mark.docker


@pytest.fixture
def gateway(volume_server: ServerProcess, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = start_gateway(volume_server.address, tmp_path)
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def http(gateway: GatewayProcess, alice: Tenant) -> Iterator[httpx.Client]:
    """The gateway as alice (the server lets callers name their account; any key)."""
    with httpx.Client(base_url=gateway.url, auth=(alice.account, "any-key"), timeout=60) as client:
        yield client


@pytest.fixture
def stranger(gateway: GatewayProcess, bob: Tenant) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, auth=(bob.account, "any-key"), timeout=60) as client:
        yield client


def test_an_account_browses_and_downloads_its_files_and_deletes_its_volume(alice: Tenant, http: httpx.Client) -> None:
    made = http.post("/ui/api/volume/create", data={"name": "data"})
    assert made.status_code == 200, made.text
    assert made.json()["name"] == "data" and made.json()["created_at"]
    big = os.urandom(3 << 20) + b"tail"  # several gRPC messages
    upload(alice, "data", "dir/blob.bin", big, chunk=256 << 10)
    upload(alice, "data", "notes.txt", b"hello\n")

    (volume,) = http.get("/ui/api/volumes").json()["volumes"]
    assert volume["name"] == "data" and volume["created_at"]
    top = http.get("/ui/api/volume/files", params={"name": "data"}).json()
    assert (top["name"], top["path"], top["truncated"]) == ("data", "", False)
    assert [(e["name"], e["path"], e["directory"]) for e in top["entries"]] == [
        ("dir", "dir", True),
        ("notes.txt", "notes.txt", False),
    ]
    notes = top["entries"][1]
    assert notes["size_bytes"] == 6 and notes["modified_at"] and notes["mode"]
    inner = http.get("/ui/api/volume/files", params={"name": "data", "path": "dir"}).json()
    assert [(e["path"], e["size_bytes"]) for e in inner["entries"]] == [("dir/blob.bin", len(big))]

    got = http.get("/ui/api/volume/download", params={"name": "data", "path": "dir/blob.bin"})
    assert got.status_code == 200, got.text
    assert got.content == big
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-length"] == str(len(big))
    assert got.headers["content-disposition"].startswith('attachment; filename="blob.bin"')

    removed = http.post("/ui/api/volume/remove", data={"name": "data", "path": "notes.txt"})
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"removed": "notes.txt"}
    assert listing(alice, "data") == [("dir", True, 4096)]
    assert_api_error(http.post("/ui/api/volume/remove", data={"name": "data", "path": "notes.txt"}), 404, "NOTFOUND")

    deleted = http.post("/ui/api/volume/delete", data={"name": "data"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": "data"}
    assert http.get("/ui/api/volumes").json() == {"volumes": []}
    assert_api_error(http.post("/ui/api/volume/delete", data={"name": "data"}), 404, "NOTFOUND")


def test_another_accounts_volume_looks_missing(alice: Tenant, http: httpx.Client, stranger: httpx.Client) -> None:
    assert http.post("/ui/api/volume/create", data={"name": "private"}).status_code == 200
    upload(alice, "private", "secret.txt", b"alice only")
    file = {"name": "private", "path": "secret.txt"}
    assert stranger.get("/ui/api/volumes").json() == {"volumes": []}
    assert_api_error(stranger.get("/ui/api/volume/files", params={"name": "private"}), 404, "NOTFOUND")
    assert_api_error(stranger.get("/ui/api/volume/download", params=file), 404, "NOTFOUND")
    assert_api_error(stranger.post("/ui/api/volume/remove", data=file), 404, "NOTFOUND")
    assert_api_error(stranger.post("/ui/api/volume/delete", data={"name": "private"}), 404, "NOTFOUND")
    refused = stranger.post("/ui/api/volume/upload", params={"name": "private", "path": "x"}, content=b"bob")
    assert_api_error(refused, 404, "NOTFOUND")
    assert download(alice, "private", "secret.txt")[1] == b"alice only"  # untouched
    assert listing(alice, "private") == [("secret.txt", False, 10)]


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "a//b"])
def test_bad_paths_are_400(alice: Tenant, http: httpx.Client, path: str) -> None:
    alice.volumes.Create(pb.CreateVolumeRequest(name="paths"), metadata=alice.metadata, timeout=60)
    file = {"name": "paths", "path": path}
    assert_api_error(http.get("/ui/api/volume/files", params=file), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/volume/download", params=file), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/volume/remove", data=file), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/volume/upload", params=file, content=b"x"), 400, "QINVAL")


def test_bad_input_methods_and_what_a_file_is_not(alice: Tenant, http: httpx.Client) -> None:
    assert_api_error(http.post("/ui/api/volume/create", data={"name": "Not A Name"}), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/volume/create", data={"name": " "}), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/volume/files"), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/volume/download", params={"name": "v"}), 400, "QINVAL")  # no path
    assert_api_error(http.post("/ui/api/volume/remove", data={"name": "v"}), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/volume/files", params={"name": "absent"}), 404, "NOTFOUND")
    assert_api_error(http.post("/ui/api/volume/create", data={"x": "y" * (17 << 10)}), 413, "QINVAL")
    assert http.get("/ui/api/volume/create", params={"name": "v"}).status_code == 405
    assert http.get("/ui/api/volume/delete", params={"name": "v"}).status_code == 405
    assert http.get("/ui/api/volume/remove", params={"name": "v", "path": "x"}).status_code == 405
    assert http.get("/ui/api/volume/upload", params={"name": "v", "path": "x"}).status_code == 405
    assert http.post("/ui/api/volumes").status_code == 405
    assert http.post("/ui/api/volume/files", data={"name": "v"}).status_code == 405
    assert http.post("/ui/api/volume/download", data={"name": "v", "path": "x"}).status_code == 405

    assert http.post("/ui/api/volume/create", data={"name": "v"}).status_code == 200
    assert_api_error(http.post("/ui/api/volume/create", data={"name": "v"}), 409, "CONFLICT")
    upload(alice, "v", "dir/file", b"x")
    assert_api_error(http.get("/ui/api/volume/download", params={"name": "v", "path": "dir"}), 409, "CONFLICT")
    assert_api_error(http.get("/ui/api/volume/download", params={"name": "v", "path": "nothing"}), 404, "NOTFOUND")
    assert_api_error(http.get("/ui/api/volume/files", params={"name": "v", "path": "dir/file"}), 409, "CONFLICT")


def test_uploads_stream_the_body_into_a_whole_file_within_the_quota(alice: Tenant, http: httpx.Client) -> None:
    assert http.post("/ui/api/volume/create", data={"name": "up"}).status_code == 200
    data = os.urandom((5 << 20) // 2)  # 2.5 MiB: three Upload messages
    made = http.post("/ui/api/volume/upload", params={"name": "up", "path": "in/data.bin"}, content=data)
    assert made.status_code == 200, made.text
    assert (made.json()["path"], made.json()["size_bytes"], made.json()["directory"]) == (
        "in/data.bin",
        len(data),
        False,
    )
    assert download(alice, "up", "in/data.bin")[1] == data

    # the server's quota is 8 MiB per volume: refused from the declared length, nothing stored
    over = http.post("/ui/api/volume/upload", params={"name": "up", "path": "huge"}, content=b"\0" * (9 << 20))
    assert_api_error(over, 429, "LIMIT")
    unsized = http.post("/ui/api/volume/upload", params={"name": "up", "path": "x"}, content=iter([b"no ", b"length"]))
    assert_api_error(unsized, 411, "QINVAL")
    # a length no int64 holds (sent by hand: an HTTP client would want to send that many bytes)
    head = f"POST /ui/api/volume/upload?name=up&path=x HTTP/1.1\r\nHost: gateway\r\nContent-Length: {1 << 63}\r\n"
    auth = base64.b64encode(f"{alice.account}:any-key".encode()).decode()
    with socket.create_connection((http.base_url.host, http.base_url.port), timeout=30) as raw:
        raw.sendall(f"{head}Authorization: Basic {auth}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (more := raw.recv(65536)):
            answer += more
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert listing(alice, "up") == [("in", True, 4096)]


def test_an_upload_refused_at_its_start_is_429_every_time(http: httpx.Client) -> None:
    """The server refuses an upload over the quota at its start and ends the call. A
    gateway that went on writing the body then had a write fail after that status, and
    grpc's asyncio client (grpc/grpc#36066) replaced the status with INTERNAL "Internal
    error from Core" (a 502) now and then; the gateway now waits for the server to
    accept the start before it sends any of the body."""
    assert http.post("/ui/api/volume/create", data={"name": "tight"}).status_code == 200
    body = b"\0" * (9 << 20)
    answers = [
        http.post("/ui/api/volume/upload", params={"name": "tight", "path": f"f{n}"}, content=body) for n in range(40)
    ]
    assert [a.status_code for a in answers] == [429] * 40, [a.text for a in answers if a.status_code != 429][:3]
    assert_api_error(answers[-1], 429, "LIMIT")


def test_bad_credentials_beat_bad_input(gateway: GatewayProcess) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as anonymous:
        assert anonymous.post("/ui/api/volume/delete", data={"name": ""}).status_code == 401
        assert anonymous.get("/ui/api/volume/download", params={"name": "x", "path": "../y"}).status_code == 401
