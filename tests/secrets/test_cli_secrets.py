"""`cloudpipe secret ...` and `cloudpipe submit --secret` as a user types them, against
the secret server as a fresh account: values go in from stdin, from a file and from a
hidden prompt on a real terminal, never from an argument; listings and --json output;
exit codes of missing and bad things; jobs get them as variables and files. The value
is never in the CLI's stdout or stderr (jobs print a sha256 of it)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudpipe_sdk import Client
from tests.cli.support import Result, cloudpipe
from tests.cli.terminal import Terminal
from tests.secrets.test_sdk_secrets import tenant
from tests.support import ServerProcess

pytestmark = pytest.mark.docker

VALUE = "s3cr3t-cli-" + uuid.uuid4().hex
PRINT_DIGEST = 'printf %s "$TOKEN" | sha256sum | cut -c1-64'


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


class Account:
    """The `cloudpipe` command (and an SDK client) acting as one fresh account; every
    output is checked for the value."""

    def __init__(self, server: ServerProcess, client: Client) -> None:
        self.server = server
        self.client = client
        self.env = {"CLOUDPIPE_ACCOUNT": client.config.account}

    def run(self, *args: str, stdin: str = "") -> Result:
        done = cloudpipe(self.server, *args, env=self.env, stdin=stdin)
        assert VALUE not in done.stdout + done.stderr, args
        return done

    def ok(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.exit_code == 0, (args, done.stdout, done.stderr)
        return done.stdout


@pytest.fixture
def account(secret_server: ServerProcess) -> Iterator[Account]:
    with tenant(secret_server, "cli") as client:
        yield Account(secret_server, client)


def test_set_from_stdin_and_a_file_list_and_remove(account: Account, tmp_path: Path) -> None:
    assert account.ok("secret", "set", "TOKEN", stdin=VALUE) == "set secret TOKEN\n"
    waited = account.run("submit", "--wait", "--secret", "TOKEN", PRINT_DIGEST)
    assert (waited.exit_code, waited.stdout) == (0, f"{sha256(VALUE)}\n"), waited.stderr

    # stdin is taken byte for byte: a final newline is kept, and said so
    piped = account.run("secret", "set", "TOKEN", stdin=VALUE + "\n")
    assert piped.exit_code == 0 and "ends with a newline" in piped.stderr
    assert account.client.shell(PRINT_DIGEST, secrets=["TOKEN"]).result(timeout=120) == (
        f"{sha256(VALUE + chr(10))}\n".encode()
    )

    key = tmp_path / "server.key"
    key.write_bytes(VALUE.encode() + b"\n\x00binary")
    made = json.loads(account.ok("secret", "set", "TLS_KEY", "--from-file", str(key), "--json"))
    assert made["name"] == "TLS_KEY" and made["created_at"] and made["updated_at"]
    as_file = account.run(
        "submit", "--wait", "--secret", "TLS_KEY:/run/tls/key", "sha256sum < /run/tls/key | cut -c1-64"
    )
    assert (as_file.exit_code, as_file.stdout) == (0, f"{sha256(key.read_bytes())}\n"), as_file.stderr
    submitted = json.loads(account.ok("submit", "--json", "--secret", "TOKEN", "--secret", "TLS_KEY:/k", "true"))
    assert account.client.get(submitted["id"]).snapshot.spec.secrets == ("TOKEN", "TLS_KEY:/k")

    listed = json.loads(account.ok("secret", "ls", "--json"))
    assert [s["name"] for s in listed] == ["TLS_KEY", "TOKEN"]
    assert all(set(s) == {"name", "created_at", "updated_at"} for s in listed)
    table = account.ok("secret", "ls")
    assert "TLS_KEY" in table and "TOKEN" in table and "UPDATED" in table

    assert account.ok("secret", "rm", "TOKEN") == "deleted secret TOKEN\n"
    assert json.loads(account.ok("secret", "rm", "TLS_KEY", "--json")) == {"deleted": "TLS_KEY"}
    missing = account.run("secret", "rm", "TOKEN")
    assert missing.exit_code == 3 and "TOKEN" in missing.stderr
    assert json.loads(account.ok("secret", "ls", "--json")) == []


def test_a_value_is_never_taken_from_an_argument_nor_echoed(account: Account, tmp_path: Path) -> None:
    for args in (("TOKEN", VALUE), (f"TOKEN={VALUE}",), (VALUE.replace("-", "_") + "-",)):
        refused = account.run("secret", "set", *args, stdin=VALUE)
        assert refused.exit_code == 2 and "never from the command line" in refused.stderr, refused
        assert VALUE.replace("-", "_") not in refused.stdout + refused.stderr
    empty = account.run("secret", "set", "TOKEN", stdin="")
    assert empty.exit_code == 2 and "empty" in empty.stderr
    (tmp_path / "empty").write_bytes(b"")
    assert account.run("secret", "set", "TOKEN", "--from-file", str(tmp_path / "empty")).exit_code == 2
    assert account.run("secret", "set", "TOKEN", "--from-file", str(tmp_path / "absent")).exit_code == 2
    assert account.run("secret", "set", "HUGE", stdin=VALUE * 2000).exit_code == 2  # over 64 KiB: the server's
    assert account.client.secrets.list() == []  # nothing was set


def test_submit_refuses_missing_and_bad_secrets(account: Account) -> None:
    account.ok("secret", "set", "TOKEN", stdin=VALUE)
    missing = account.run("submit", "--secret", "ABSENT", "true")
    assert missing.exit_code == 3 and "ABSENT" in missing.stderr
    for bad in (["--secret", "bad-name"], ["--secret", "TOKEN:relative"], ["--secret", "TOKEN:/proc/x"]):
        done = account.run("submit", *bad, "true")
        assert done.exit_code == 2 and "secrets" in done.stderr, (bad, done.stderr)
    both = account.run("submit", "--env", "TOKEN=x", "--secret", "TOKEN", "true")
    assert both.exit_code == 2 and "also set in env" in both.stderr
    assert account.client.list() == []  # no job was made


def test_a_terminal_prompts_for_the_value_without_showing_it(account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDPIPE_ACCOUNT", account.client.config.account)
    terminal = Terminal(account.server, "secret", "set", "TOKEN")
    terminal.expect("Value of TOKEN (not shown): ")  # the space: written once echo is off
    terminal.type(VALUE.encode() + b"\r")
    assert terminal.wait() == 0, terminal.text
    assert "set secret TOKEN" in terminal.text and VALUE not in terminal.text
    job = account.client.shell(PRINT_DIGEST, secrets=["TOKEN"])
    assert job.result(timeout=120) == f"{sha256(VALUE)}\n".encode()
