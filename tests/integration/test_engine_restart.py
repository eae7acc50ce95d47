"""The Docker engine restarting under a running job: the job ends in a clear state and
the server keeps working. This test restarts dockerd, so it only runs where the test
command started dockerd itself (scripts/setup.sh records its pid file)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import docker
import pytest

from cloudpipe_sdk import Client, JobFailed, JobStatus

pytestmark = pytest.mark.docker
PID_FILE = Path("/var/run/cloudpipe-dockerd.pid")


def restart_dockerd() -> None:
    pid = int(PID_FILE.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.2)
    with open("/var/log/cloudpipe-dockerd.log", "ab") as log:
        process = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    PID_FILE.write_text(str(process.pid))
    while True:
        try:
            docker.from_env().ping()
            return
        except docker.errors.DockerException:
            assert time.monotonic() < deadline + 60, "dockerd did not come back"
            time.sleep(0.5)


def _ours() -> bool:
    try:
        return Path(f"/proc/{int(PID_FILE.read_text())}/comm").read_text().strip() == "dockerd"
    except (OSError, ValueError):
        return False


@pytest.mark.skipif(not _ours(), reason="dockerd was not started by scripts/setup.sh: not ours to restart")
def test_engine_restart_mid_job_ends_the_job_clearly(client: Client) -> None:
    job = client.shell("echo started; sleep 60")
    deadline = time.monotonic() + 60
    while "started" not in client.get(job.id).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    restart_dockerd()
    with pytest.raises(JobFailed) as failure:
        job.result(timeout=120)
    assert failure.value.status in ("error", "killed")
    assert failure.value.reason, "the job says why it ended"
    assert job.stdout.startswith("started"), "output written before the restart is kept"
    assert client.shell("echo engine-is-back").result(timeout=120) == b"engine-is-back\n"
    assert client.get(job.id).status in (JobStatus.ERROR, JobStatus.KILLED)
