"""Progress bars in a real terminal (tmux): `cloudpipe wait` and `Client.map` draw one
when attached to a terminal, and print nothing of it otherwise."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from cloudpipe_sdk import Client
from tests.cli.support import TmuxServer, cloudpipe
from tests.support import ROOT, ServerProcess

pytestmark = pytest.mark.docker
MAP_SCRIPT = """
import sys
from cloudpipe_sdk import Client
with Client(sys.argv[1], api_key=sys.argv[2]) as client:
    print("results:", list(client.map(abs, [-1, -2, -3])))
"""


def in_terminal(command: list[str], timeout: float = 90) -> str:
    """Run `command` in a detached tmux session (a real pty, 120x30) and return the
    screen once it exited."""
    if shutil.which("tmux") is None:
        pytest.fail("these tests need tmux (apt-get install tmux; scripts/setup.sh installs it)")
    session = f"cloudpipe-test-{uuid.uuid4().hex[:8]}"
    tmux = TmuxServer(session)
    shell = f"cd {shlex.quote(str(ROOT))} && {shlex.join(command)}; echo EXITED-$?; sleep 60"
    subprocess.run(tmux.command("new-session", "-d", "-s", session, "-x", "120", "-y", "30", shell), check=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = subprocess.run(
                tmux.command("capture-pane", "-p", "-t", session), capture_output=True, text=True, check=True
            ).stdout
            if "EXITED-" in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"still running after {timeout} s:\n{screen}")
    finally:
        tmux.stop()


def test_wait_draws_a_progress_bar_in_a_terminal_only(server: ServerProcess, client: Client) -> None:
    ids = [str(client.shell(f"sleep {n}").id) for n in (0, 1, 1)]
    base = [sys.executable, "-m", "cloudpipe_sdk.cli", "--address", server.address, "--api-key", server.api_key]
    screen = in_terminal([*base, "wait", *ids])
    assert "EXITED-0" in screen
    assert "waiting" in screen and "3/3" in screen and "━" in screen
    assert all(f"job {i}: done" in screen for i in ids)
    piped = cloudpipe(server, "wait", *ids)
    assert "━" not in piped.stdout + piped.stderr and "3/3" not in piped.stdout
    forced = cloudpipe(server, "wait", "--progress", *ids)
    assert "3/3" in forced.stdout


def test_map_draws_a_progress_bar_on_a_terminal_only(server: ServerProcess) -> None:
    command = [sys.executable, "-c", MAP_SCRIPT, server.address, server.api_key]
    screen = in_terminal(command)
    assert "results: [1, 2, 3]" in screen and "EXITED-0" in screen
    assert "map" in screen and "3/3" in screen and "━" in screen
    piped = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=90)
    assert piped.stdout == "results: [1, 2, 3]\n" and piped.stderr == ""
