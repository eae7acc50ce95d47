"""multyvac's volume API on the gateway (`/v1/volume...`, `/v1/key`), over the real server
on the Docker engine: over HTTP as the client sends it, then with the real, unmodified
multyvac 0.5.0 client (Python 2.7, in the runner-py2 image): its volume calls, a job
mounting a volume by name, and `submit(f)` of a function that imports a module of the
client's own, whose files multyvac syncs (rsync over the gateway's SSH) into
`auto-deps-<host>` before every submit that needs them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from cloudpipe_proto.v1 import volumes_pb2 as vpb
from cloudpipe_proto.v1 import volumes_pb2_grpc as vpb_grpc
from http_gateway.multyvac_keys import ssh_key
from http_gateway.multyvac_volumes import volume_name
from tests.gateway.conftest import Stack
from tests.gateway.support import assert_api_error, get_job, run_multyvac

pytestmark = pytest.mark.docker


@pytest.fixture
def volumes(stack: Stack) -> Iterator[Any]:
    """The admin account's VolumeService; every volume is deleted afterwards."""
    channel = grpc.insecure_channel(stack.server.address)
    stub = vpb_grpc.VolumeServiceStub(channel)  # type: ignore[no-untyped-call]
    metadata = (("authorization", f"Bearer {stack.key}"), ("x-cloudpipe-account", "admin"))
    yield stub, metadata
    for volume in stub.List(vpb.ListVolumesRequest(), metadata=metadata, timeout=30).volumes:
        stub.Delete(vpb.DeleteVolumeRequest(name=volume.name), metadata=metadata, timeout=60)
    channel.close()


def test_the_volume_calls_over_http(http: httpx.Client, anon: httpx.Client, volumes: Any) -> None:
    assert_api_error(anon.get("/v1/volume"), 401, "ANONE")
    made = http.post("/v1/volume", json={"volume": {"name": "data", "mount_path": "/data", "mount_type": "bind"}})
    assert (made.status_code, made.json()) == (200, {"status": "ok"})
    again = http.post("/v1/volume", json={"volume": {"name": "data", "mount_path": "/data"}})
    assert "name already exists" in assert_api_error(again, 409, "VEXISTS")["message"]
    assert_api_error(http.post("/v1/volume", json={"volume": {"name": "x"}}), 400, "QINVAL")
    assert_api_error(
        http.post("/v1/volume", json={"volume": {"name": "x", "mount_path": "/x", "mount_type": "nfs"}}), 400, "QINVAL"
    )
    assert_api_error(http.post("/v1/volume", content=b"{not json"), 400, "JPRS")
    assert_api_error(http.post("/v1/volume", json={"volume": {"name": "x", "mount_path": "/proc"}}), 400, "QINVAL")

    (listed,) = http.get("/v1/volume", params={"name": "data"}).json()["volumes"]
    assert {k: listed[k] for k in ("name", "mount_path", "mount_type")} == {
        "name": "data",
        "mount_path": "/data",
        "mount_type": "bind",
    }
    assert len(listed["created_at"]) == len("2026-12-07 01:02:03.456")
    assert http.get("/v1/volume", params={"name": "other"}).json() == {"volumes": []}

    put = http.put("/v1/volume/data", files={"file": ("/in/hello.txt", b"hello\n")}, data={"file_mode": "420"})
    assert put.json() == {"status": "ok"}
    assert http.put("/v1/volume/data/mkdir", params={"path": "out/deep"}).json() == {"status": "ok"}
    ls = http.get("/v1/volume/data/ls", params={"path": ""}).json()["ls"]
    assert [(e["path"], e["type"]) for e in ls] == [("in", "d"), ("out", "d")]
    (hello,) = http.get("/v1/volume/data/ls", params={"path": "in"}).json()["ls"]
    assert (hello["path"], hello["type"], hello["size"], hello["mode"]) == ("in/hello.txt", "f", 6, 0o644)
    (got,) = http.get("/v1/volume/data", params={"path": "in/hello.txt"}).json()["files"]
    assert base64.b64decode(got["contents"]) == b"hello\n" and got["size"] == 6
    assert http.post("/v1/volume/data/rm", params={"path": "in/hello.txt"}).json() == {"status": "ok"}
    assert http.get("/v1/volume/data/ls", params={"path": "in"}).json() == {"ls": []}

    assert_api_error(http.get("/v1/volume/absent/ls"), 404, "VNF", "Volume [absent] not found.")
    assert_api_error(http.get("/v1/volume/data", params={"path": "nothing"}), 404, "NOTFOUND")
    assert_api_error(http.post("/v1/volume/data/rm", params={"path": "../etc"}), 400, "QINVAL")
    assert_api_error(http.post("/v1/volume/data/rm"), 400, "QINVAL")
    assert_api_error(http.delete("/v1/volume/data"), 405, "MINVAL")
    assert_api_error(http.put("/v1/volume/data", content=b"not a form"), 400, "QINVAL")

    def chunked(size: int) -> Iterator[bytes]:  # no Content-Length: the body is counted as it comes
        for _ in range(size // 65536):
            yield b" " * 65536

    assert_api_error(http.post("/v1/volume", content=chunked(4 << 20)), 413, "QINVAL")
    assert_api_error(http.put("/v1/volume/data", content=chunked(1 << 20)), 411, "QINVAL")


def test_the_key_is_the_ssh_key_of_the_callers_api_key(stack: Stack, http: httpx.Client, anon: httpx.Client) -> None:
    assert_api_error(anon.get("/v1/key"), 401, "ANONE")
    (key,) = http.get("/v1/key", params={"id": "admin"}).json()["keys"]
    expected = ssh_key("admin", stack.key)
    assert key["public_key"] == expected.public_openssh  # the same key pair every time
    private = serialization.load_ssh_private_key(key["private_key"].encode(), None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert public.decode() == expected.public_openssh
    assert key["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert key["secret_key"] == "" and stack.key not in str(key)  # the API key itself is never echoed
    assert http.get("/v1/key", params={"id": "someone-else"}).json() == {"keys": []}
    assert ssh_key("admin", stack.key + "x").public_openssh != expected.public_openssh


def test_host_names_become_volume_names() -> None:
    assert volume_name("auto-deps-vm") == "auto-deps-vm"
    mapped = volume_name("auto-deps-Alices-MacBook-Pro.local")
    assert mapped.startswith("auto-deps-alices-macbook-pro.local-") and mapped != volume_name(
        "auto-deps-alices-MacBook-Pro.local"
    )
    assert len(volume_name("x" * 200)) <= 63 and volume_name("x" * 200) == volume_name("x" * 200)


def test_the_real_client_uses_volumes_and_ships_its_own_modules(
    stack: Stack, py2_docker: Any, http: httpx.Client, volumes: Any
) -> None:
    result = run_multyvac(
        py2_docker,
        stack.url,
        stack.key,
        r"""
import os, socket
multyvac.volume.create('mydata', '/mnt/mydata')
vol = multyvac.volume.get('mydata')
vol.put_contents('42\n', 'answer.txt')
vol.mkdir('sub')
listing = sorted((e['path'], e['type']) for e in vol.ls(''))
contents = vol.get_contents('answer.txt')['contents']
reader = multyvac.shell_submit('cat /mnt/mydata/answer.txt', _vol=['mydata'])
read = multyvac.get(reader).get_result()

os.makedirs('/tmp/work/helpers')
with open('/tmp/work/helpers/__init__.py', 'w') as f:
    f.write('')
with open('/tmp/work/helpers/arith.py', 'w') as f:
    f.write('def triple(x):\n    return 3 * x\n')
sys.path.insert(0, '/tmp/work')
from helpers.arith import triple

def uses_my_module(x):
    return triple(x) + 1

first = multyvac.submit(uses_my_module, 4)
first_result = multyvac.get(first).get_result()
second = multyvac.submit(uses_my_module, 10)  # the same process: multyvac's flag is sticky
second_result = multyvac.get(second).get_result()
emit(listing=listing, contents=contents, read=read, first=first, first_result=first_result,
     second_result=second_result, host=socket.gethostname())
""",
        timeout=300,
    )
    assert result["listing"] == [["answer.txt", "f"], ["sub", "d"]]
    assert (result["contents"], result["read"]) == ("42\n", "42\n")
    assert (result["first_result"], result["second_result"]) == (13, 31)
    job = get_job(http, result["first"])
    deps = volume_name(f"auto-deps-{result['host']}")
    assert job["vol"] == [{"name": deps}] and job["env"]["PYTHONPATH"] == "/pymodules"
    stub, metadata = volumes
    files = stub.ListFiles(vpb.ListFilesRequest(volume=deps, path="helpers"), metadata=metadata, timeout=60)
    assert {e.path for e in files.entries} >= {"helpers/__init__.py", "helpers/arith.py"}
