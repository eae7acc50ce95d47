"""What `cloudpipe` says when something is wrong: a wrong or missing API key said
plainly, an unreachable server announced while it is retried and a clear error when
it gives up, `kill` reporting the status the job ended with, and `attach` on a
finished job saying it has finished. Against a real server (the fake executor: no
container is needed to see these)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cloudpipe_sdk import Client, JobStatus
from tests.cli.support import cloudpipe
from tests.support import ROOT, ServerProcess, free_port


def no_config(tmp_path: Path) -> dict[str, str]:
    return {"CLOUDPIPE_CONFIG": str(tmp_path / "none.toml"), "CLOUDPIPE_API_KEY": "", "CLOUDPIPE_ADDRESS": ""}


def test_a_wrong_api_key_is_said_plainly(server: ServerProcess, tmp_path: Path) -> None:
    wrong = cloudpipe(None, "--address", server.address, "--api-key", "not-the-key", "ls", env=no_config(tmp_path))
    assert wrong.exit_code == 4
    assert f"wrong API key: the server at {server.address} did not accept the key given with --api-key" in wrong.stderr
    assert "unable to authenticate account" not in wrong.stderr and "[?]" not in wrong.stderr
    assert "not-the-key" not in wrong.stderr  # never the key itself
    from_env = cloudpipe(
        None, "--address", server.address, "ls", env={**no_config(tmp_path), "CLOUDPIPE_API_KEY": "also-wrong"}
    )
    assert from_env.exit_code == 4 and "the key from CLOUDPIPE_API_KEY" in from_env.stderr
    missing = cloudpipe(None, "--address", server.address, "ls", env=no_config(tmp_path))
    assert missing.exit_code == 4 and "no API key" in missing.stderr and "--api-key" in missing.stderr


def test_an_unreachable_server_is_announced_while_retrying(tmp_path: Path) -> None:
    impatient = tmp_path / "config.toml"
    impatient.write_text("[profiles.default]\nretry_for = 3\n")
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "cloudpipe_sdk.cli", "--address", address, "--api-key", "k", "ls"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "CLOUDPIPE_CONFIG": str(impatient)}
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        announced_after = time.monotonic() - started
        still_running = process.poll() is None
        rest = process.stderr.read()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert first == f"cloudpipe: cannot reach {address}, retrying for up to 3 s...\n"
    assert still_running, f"the notice came only when it gave up ({announced_after:.1f} s)"
    assert process.returncode == 5
    assert f"cannot reach the server at {address} (tried for 3 s)" in rest
    assert "retrying" not in rest  # said once, not once per attempt


def test_attach_to_a_finished_job_says_it_has_finished(server: ServerProcess, client: Client) -> None:
    job = client.shell("echo over")
    job.wait(timeout=30)
    attached = cloudpipe(server, "attach", str(job.id), stdin="ignored\n")
    assert attached.exit_code == 2
    assert f"job {job.id} already ended done" in attached.stderr and "stdin" not in attached.stderr


def test_kill_prints_the_status_after_the_kill(server: ServerProcess, client: Client) -> None:
    job = client.shell("sleep 60")
    deadline = time.monotonic() + 30
    while job.refresh().status is not JobStatus.PROCESSING and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = cloudpipe(server, "kill", str(job.id))
    assert (killed.exit_code, killed.stdout) == (0, f"job {job.id}: killed\n"), killed.stderr
    again = cloudpipe(server, "kill", str(job.id))
    assert again.stdout == f"job {job.id}: already ended killed, left as it is\n"
