"""The SSH end of multyvac's volume sync on the gateway, tried the way a hostile client
would (asyncssh as the client, the real server on the Docker engine): only the key the
gateway derives from the caller's API key, as user `multyvac`, gets in; the only command
is an rsync server inside the volume's mount; no forwarding; one session per sync job, then
the port closes;
an offer nobody takes kills its job. And the check of rsync command lines."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from http_gateway.multyvac_keys import ssh_key
from http_gateway.multyvac_sync import SYNC_COMMAND, rsync_argv
from tests.gateway.conftest import Stack
from tests.gateway.support import (
    PY2_IMAGE,
    GatewayProcess,
    assert_api_error,
    get_job,
    job_payload,
    start_gateway,
    submit,
    wait_status,
)

with warnings.catch_warnings():  # asyncssh imports cryptography's deprecated DSA
    warnings.simplefilter("ignore")
    import asyncssh

MOUNT = "/pymodules"


@pytest.mark.parametrize(
    "command",
    [
        "rsync --server -vlogDtprLze.iLsfxC . /pymodules/",
        "rsync --server --sender -vlogDtprLze.iLsfxC . /pymodules/helpers",
        "rsync --server -vlogDtprze.iLsfxC --chmod=u+rwx . /pymodules/a /pymodules/b",
        "rsync --server -vlogDtprLze.iLsfxCIvu . /pymodules/",  # rsync 3.2's capabilities
    ],
)
def test_rsync_servers_inside_the_mount_are_accepted(command: str) -> None:
    assert rsync_argv(command, MOUNT) == command.split()


@pytest.mark.parametrize(
    "command",
    [
        None,
        "",
        "bash",
        "sh -c 'rsync --server -vlogDtpr . /pymodules/'",
        "rsync -vlogDtpr . /pymodules/",  # not a server
        "rsync --server -vlogDtpr --log-file=/tmp/x . /pymodules/",
        "rsync --server -vlogDtpr --rsync-path=/bin/sh . /pymodules/",
        "rsync --server -vlogDtpr -T /tmp . /pymodules/",
        "rsync --server -s . /pymodules/",  # --protect-args: a new argument list from stdin
        "rsync --server -vlogDtprs . /pymodules/",
        "rsync --server -vT.. . /pymodules/",
        "rsync --server -vM . /pymodules/",
        "rsync --server - . /pymodules/",
        "rsync --server -vlogDtpr . /etc/",
        "rsync --server -vlogDtpr . /pymodules/../etc",
        "rsync --server -vlogDtpr . /pymodulesX",
        "rsync --server -vlogDtpr . relative",
        "rsync --server -vlogDtpr .",
        "rsync --server -vlogDtpr /pymodules/",
        "rsync --server -vlogDtpr . '/pymodules/unbalanced",
    ],
)
def test_anything_else_is_refused(command: str | None) -> None:
    assert rsync_argv(command, MOUNT) is None


@pytest.mark.docker
def test_the_job_checks_the_command_line_again(py2_docker: Any) -> None:
    """multyvacinit/sync.py in the runner-py2 image: the same options refused, and plain
    absolute paths only (the mount is the gateway's check)."""
    script = (
        "from multyvacinit import sync\n"
        "for argv in %r:\n"
        "    try:\n"
        "        sync.checked(argv); print('ok')\n"
        "    except ValueError:\n"
        "        print('refused')\n"
    )
    cases = [
        ["rsync", "--server", "-vlogDtprLze.iLsfxCIvu", ".", "/pymodules/"],
        ["rsync", "--server", "-s", ".", "/pymodules/"],
        ["rsync", "--server", "-vlogDtpr", "--log-file=/tmp/x", ".", "/pymodules/"],
        ["rsync", "--server", "-vlogDtpr", ".", "/pymodules/../etc"],
        ["rsync", "--server", "-vlogDtpr", ".", "relative"],
        ["sh", "-c", "id", ".", "/pymodules/"],
    ]
    out = py2_docker.containers.run(PY2_IMAGE, ["python", "-c", script % (cases,)], remove=True, network_mode="none")
    assert out.decode().split() == ["ok", "refused", "refused", "refused", "refused", "refused"]


def sync_job(http: httpx.Client) -> tuple[int, int]:
    """A running sync job, as multyvac submits it, and the SSH port its GET shows."""
    made = http.post("/v1/volume", json={"volume": {"name": "sync-target", "mount_path": MOUNT}})
    assert made.status_code in (200, 409), made.text
    job = job_payload(SYNC_COMMAND, vol=[{"name": "sync-target"}], tags={"system": "true"}, name="volume sync up")
    (jid,) = submit(http, job)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = get_job(http, jid)
        port = shown["collected"].get("ports", {}).get("tcp", {}).get("22", {}).get("port")
        if port:
            assert shown["collected"]["ports"]["tcp"]["22"]["address"] == "127.0.0.1"
            return jid, int(port)
        assert shown["status"] in ("waiting", "queued", "processing"), shown
        time.sleep(0.2)
    raise AssertionError("the sync job never showed an SSH port")


def private_key(account: str, api_key: str) -> Any:
    return asyncssh.import_private_key(ssh_key(account, api_key).private_openssh)


async def connect(port: int, key: Any, username: str = "multyvac") -> Any:
    return await asyncssh.connect(
        "127.0.0.1", port, username=username, client_keys=[key], known_hosts=None, agent_path=None, password=None
    )


@pytest.mark.docker
def test_only_the_callers_key_gets_in_and_only_rsync_runs(stack: Stack, http: httpx.Client) -> None:
    jid, port = sync_job(http)

    async def attempts() -> None:
        stranger = asyncssh.generate_private_key("ssh-ed25519")
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(port, stranger)
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(port, private_key("admin", stack.key + "-revoked"))
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(port, private_key("admin", stack.key), username="root")
        async with await connect(port, private_key("admin", stack.key)) as conn:
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", 22)  # no forwarding
            shell = await conn.run("bash -c id", check=False)
            assert shell.exit_status == 1 and "only an rsync of /pymodules runs here" in shell.stderr
        await asyncio.sleep(0.5)
        with pytest.raises(OSError):  # one session per sync job: then the port is gone
            await connect(port, private_key("admin", stack.key))

    asyncio.run(attempts())
    # the session never reached the job: it is killed, not left waiting for its stdin
    assert wait_status(http, jid, {"killed", "done", "error"})["status"] == "killed"


@pytest.mark.docker
def test_a_sync_of_a_missing_volume_is_refused_at_submit(http: httpx.Client) -> None:
    job = job_payload(SYNC_COMMAND, vol=[{"name": "never-made"}], tags={"system": "true"})
    assert_api_error(http.post("/v1/job", json={"jobs": [job]}), 404, "VNF", "Volume [never-made] not found.")


@pytest.mark.docker
def test_a_client_gone_mid_session_leaves_no_job_behind(stack: Stack, http: httpx.Client) -> None:
    jid, port = sync_job(http)

    async def walk_away() -> None:
        async with await connect(port, private_key("admin", stack.key)) as conn:
            process = await conn.create_process("rsync --server -vlogDtprLze.iLsfxCIvu . /pymodules/", encoding=None)
            await asyncio.sleep(1)  # the rsync server has started and waits for the protocol
            process.close()  # no protocol, no end of stdin: the connection simply goes

    asyncio.run(walk_away())
    assert wait_status(http, jid, {"killed", "done", "error"})["status"] in ("killed", "error")


@pytest.fixture
def hasty_gateway(stack: Stack, tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway in front of the same server whose sync ports wait 2 s for a client."""
    gateway = start_gateway(stack.server.address, tmp_path, "--sync-offer-seconds", "2")
    yield gateway
    assert gateway.stop() == 0, gateway.log


@pytest.mark.docker
def test_an_offer_nobody_takes_kills_its_job(stack: Stack, hasty_gateway: GatewayProcess) -> None:
    with httpx.Client(base_url=hasty_gateway.url, auth=("admin", stack.key), timeout=30) as http:
        jid, _port = sync_job(http)
        job = wait_status(http, jid, {"killed", "done", "error"}, timeout=60)
    assert job["status"] == "killed"
    assert "no client within 2 s" in hasty_gateway.log
