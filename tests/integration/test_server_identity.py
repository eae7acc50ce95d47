"""One server per port and per identity (issue 16, item 7): a second server on a port
in use, or with the CLOUDPIPE_SERVER_ID of a live server on the same store, refuses to
start with a clear message and a non-zero exit; a server restarted after a crash (or a
clean stop) takes its identity back at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import SESSION_PREFIX, ServerProcess, free_port, start_server

pytestmark = pytest.mark.docker


def refused_start(data_dir: Path, port: int, server_id: str, api_key: str) -> tuple[int, str]:
    """Run a server that must not start: its exit code and what it printed."""
    env = {
        **os.environ,
        "CLOUDPIPE_LISTEN": f"127.0.0.1:{port}",
        "CLOUDPIPE_DATA_DIR": str(data_dir),
        "CLOUDPIPE_ADMIN_KEY": api_key,
        "CLOUDPIPE_LEASE_SECONDS": "6",
        "CLOUDPIPE_POLL_INTERVAL": "0.2",
        "CLOUDPIPE_SERVER_ID": server_id,
    }
    done = subprocess.run(
        [sys.executable, "-m", "cloudpipe_server"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_a_second_server_on_a_port_in_use_refuses_to_start(server: ServerProcess, tmp_path: Path) -> None:
    port = int(server.address.rsplit(":", 1)[1])
    code, output = refused_start(tmp_path, port, f"{SESSION_PREFIX}second-on-port", server.api_key)
    assert code != 0
    assert f"127.0.0.1:{port}" in output and "in use" in output, output
    with server.client() as client:  # the first one still serves alone
        assert client.queue_stats() is not None


def test_a_second_server_with_a_live_servers_identity_refuses_to_start(tmp_path: Path, docker_engine: object) -> None:
    first = start_server(tmp_path)
    server_id = f"{SESSION_PREFIX}{first.address.rsplit(':', 1)[1]}"  # start_server's identity
    try:
        code, output = refused_start(tmp_path, free_port(), server_id, first.api_key)
        assert code != 0
        assert server_id in output and "another live server" in output, output
    finally:
        assert first.stop() == 0, first.log


def test_a_restart_after_a_crash_or_a_stop_takes_the_identity_back_at_once(
    tmp_path: Path, docker_engine: object
) -> None:
    port = free_port()
    first = start_server(tmp_path, port=port)
    first.stop(signal.SIGKILL)  # its lease is still live for 6 s, but its process is gone
    again = start_server(tmp_path, port=port, env={"CLOUDPIPE_ADMIN_KEY": first.api_key})
    assert again.stop() == 0, again.log  # a clean stop releases the identity
    third = start_server(tmp_path, port=port, env={"CLOUDPIPE_ADMIN_KEY": first.api_key})
    assert third.stop() == 0, third.log
