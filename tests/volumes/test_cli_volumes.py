"""`cloudpipe volume ...` and `cloudpipe submit --volume` as a user types them, against
the volume server as a fresh account: files go in and come out (to a file, into a
directory, to stdout), listings and --json output, exit codes of missing things, and
jobs that mount volumes read-write and read-only."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudpipe_sdk import Client
from tests.cli.support import Result, cloudpipe
from tests.support import ROOT, ServerProcess
from tests.volumes.sdk_support import tenant

pytestmark = pytest.mark.docker


class Account:
    """The `cloudpipe` command (and an SDK client) acting as one fresh account."""

    def __init__(self, server: ServerProcess, client: Client) -> None:
        self.server = server
        self.client = client
        self.env = {"CLOUDPIPE_ACCOUNT": client.config.account}

    def run(self, *args: str, cwd: Path | None = None, stdin: str | None = None) -> Result:
        return cloudpipe(self.server, *args, env=self.env, stdin=stdin, cwd=cwd or ROOT)

    def ok(self, *args: str, cwd: Path | None = None) -> str:
        done = self.run(*args, cwd=cwd, stdin="")
        assert done.exit_code == 0, (args, done.stdout, done.stderr)
        return done.stdout


@pytest.fixture
def account(volume_server: ServerProcess) -> Iterator[Account]:
    with tenant(volume_server, "cli") as client:
        yield Account(volume_server, client)


def test_files_in_and_out_with_the_volume_commands(account: Account, tmp_path: Path) -> None:
    name = f"v-{uuid.uuid4().hex[:8]}"
    assert json.loads(account.ok("volume", "create", name, "--json"))["name"] == name
    data = os.urandom((2 << 20) + 99)
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "notes.txt").write_text("first line\nsecond line\n")
    assert account.ok("volume", "put", name, str(tmp_path / "data.bin")) == f"{name}:data.bin (2.0 MiB)\n"
    put = json.loads(account.ok("volume", "put", name, str(tmp_path / "notes.txt"), "docs/notes.txt", "--json"))
    assert (put["path"], put["size_bytes"], put["directory"]) == ("docs/notes.txt", 23, False)

    assert [v["name"] for v in json.loads(account.ok("volume", "ls", "--json"))] == [name]
    assert name in account.ok("volume", "ls")
    top = json.loads(account.ok("volume", "ls", name, "--json"))
    assert [(e["path"], e["directory"]) for e in top] == [("data.bin", False), ("docs", True)]
    assert "docs/notes.txt" in account.ok("volume", "ls", name, "docs")
    assert json.loads(account.ok("volume", "show", name, "--json"))["size_bytes"] >= len(data)

    down = tmp_path / "down"
    down.mkdir()
    assert account.ok("volume", "get", name, "data.bin", cwd=down).strip() == "data.bin"
    assert hashlib.sha256((down / "data.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    assert account.ok("volume", "get", name, "docs/notes.txt", "-") == "first line\nsecond line\n"
    got = json.loads(account.ok("volume", "get", name, "docs/notes.txt", str(tmp_path / "n.txt"), "--json"))
    assert (got["local"], got["size_bytes"]) == (str(tmp_path / "n.txt"), 23)
    assert sorted(p.name for p in down.iterdir()) == ["data.bin"]

    missing = account.run("volume", "get", name, "absent.txt", str(tmp_path / "absent.txt"))
    assert missing.exit_code == 3 and "absent.txt" in missing.stderr and "NOT_FOUND" in missing.stderr
    assert not (tmp_path / "absent.txt").exists()
    assert account.run("volume", "ls", "no-such-volume").exit_code == 3
    assert account.run("volume", "create", "Bad Name").exit_code == 2

    assert account.ok("volume", "mkdir", name, "docs/deeper/still") == f"made {name}:docs/deeper/still/\n"
    made = json.loads(account.ok("volume", "mkdir", name, "docs/deeper", "--json"))
    assert (made["path"], made["directory"]) == ("docs/deeper", True)
    assert account.run("volume", "mkdir", name, "docs/notes.txt").exit_code == 2  # a file is in the way
    assert json.loads(account.ok("volume", "rm", name, "docs", "--json")) == {"volume": name, "removed": "docs"}
    assert [e["path"] for e in json.loads(account.ok("volume", "ls", name, "--json"))] == ["data.bin"]
    # not a terminal: no question asked
    assert account.ok("volume", "delete", name) == f"deleted volume {name}\n"
    assert json.loads(account.ok("volume", "ls", "--json")) == []


def test_a_volume_made_with_a_mount_path_shows_it(account: Account) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    made = account.ok("volume", "create", name, "--mount-path", "/pymodules", "--description", "my modules", "--json")
    assert (json.loads(made)["mount_path"], json.loads(made)["description"]) == ("/pymodules", "my modules")
    shown = account.ok("volume", "show", name)
    assert "mounts:   /pymodules (for multyvac jobs naming it)" in shown and "about:    my modules" in shown
    assert account.run("volume", "create", f"{name}-x", "--mount-path", "relative").exit_code == 2
    account.ok("volume", "delete", name)


def test_submit_mounts_volumes(account: Account, tmp_path: Path) -> None:
    name = f"w-{uuid.uuid4().hex[:8]}"
    account.ok("volume", "create", name)
    (tmp_path / "in.txt").write_text("one two three\n")
    account.ok("volume", "put", name, str(tmp_path / "in.txt"))

    waited = account.run("submit", "--wait", "--volume", f"{name}:/data", "wc -w < /data/in.txt > /data/n.txt")
    assert waited.exit_code == 0, waited.stderr
    assert account.ok("volume", "get", name, "n.txt", "-") == "3\n"
    submitted = json.loads(account.ok("submit", "--json", "--volume", f"{name}:/ro:ro", "cat /ro/n.txt"))
    job = account.client.get(submitted["id"])
    assert job.snapshot.spec.volumes == (f"{name}:/ro:ro",) and job.result(timeout=120) == b"3\n"

    refused = account.run("submit", "--wait", "--volume", f"{name}:/ro:ro", "echo x > /ro/new.txt")
    assert refused.exit_code != 0 and "Read-only file system" in refused.stderr
    assert account.run("submit", "--volume", "absent:/data", "true").exit_code == 3
    for bad in ("nocolon", f"{name}:relative", f"{name}:/data:rx", f"{name}:/a/../b"):
        done = account.run("submit", "--volume", bad, "true")
        assert done.exit_code == 2 and "volume" in done.stderr, (bad, done.stderr)
