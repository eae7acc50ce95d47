"""`cloudpipe config` and `cloudpipe server`: no connection needed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import cloudpipe
from tests.support import ROOT, ServerProcess, free_port, wait_serving


def test_config_set_show_and_path(tmp_path: Path) -> None:
    env = {"CLOUDPIPE_CONFIG": str(tmp_path / "cfg" / "config.toml"), "CLOUDPIPE_ADDRESS": "", "CLOUDPIPE_API_KEY": ""}
    assert cloudpipe(None, "config", "path", env=env).stdout.strip() == env["CLOUDPIPE_CONFIG"]
    changed = cloudpipe(None, "config", "set", "address", "example:1234", "--profile", "team", env=env)
    assert changed.exit_code == 0 and "set in profile team" in changed.stdout
    cloudpipe(None, "config", "set", "api_key", "secret-key-123", "--profile", "team", env=env)
    shown = json.loads(cloudpipe(None, "--profile", "team", "config", "show", "--json", env=env).stdout)
    assert shown["profile"] == "team"
    assert shown["settings"]["address"] == "example:1234"
    assert shown["settings"]["api_key"] == "secr…"
    text = cloudpipe(None, "--profile", "team", "--address", "override:1", "config", env=env).stdout
    assert "address: override:1  (argument)" in text and "api_key: secr…  (profile team)" in text
    missing = cloudpipe(None, "--profile", "nope", "ls", env=env)
    assert missing.exit_code == 2 and "profile 'nope' not found" in missing.stderr
    assert cloudpipe(None, "config", "set", "colour", "red", env=env).exit_code == 2


def test_the_profile_reaches_the_server(server: ServerProcess, tmp_path: Path) -> None:
    env = {"CLOUDPIPE_CONFIG": str(tmp_path / "config.toml"), "CLOUDPIPE_ADDRESS": "", "CLOUDPIPE_API_KEY": ""}
    for name, value in (("address", server.address), ("api_key", server.api_key)):
        written = cloudpipe(None, "config", "set", name, value, env=env)
        assert written.exit_code == 0, written.stderr
    listed = cloudpipe(None, "ls", "--limit", "1", "--json", env=env)
    assert listed.exit_code == 0, listed.stderr


def test_a_value_beginning_with_a_dash_can_be_set(tmp_path: Path) -> None:
    """Keys made by earlier versions may begin with "-"; click must not take it for an option."""
    env = {"CLOUDPIPE_CONFIG": str(tmp_path / "config.toml")}
    written = cloudpipe(None, "config", "set", "api_key", "-tAbc_12", env=env)
    assert written.exit_code == 0, written.stderr
    assert 'api_key = "-tAbc_12"' in (tmp_path / "config.toml").read_text()


@pytest.mark.docker
def test_server_command_runs_the_server(tmp_path: Path, docker_engine: object) -> None:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloudpipe_sdk.cli",
            "server",
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(f"127.0.0.1:{port}", "", tmp_path, process, tmp_path / "server.log")
    try:
        wait_serving(server)
        key = (tmp_path / "admin.key").read_text().strip()
        assert cloudpipe(None, "--address", server.address, "--api-key", key, "ls").exit_code == 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        log.close()
    assert "--listen" in cloudpipe(None, "server", "--help").stdout
