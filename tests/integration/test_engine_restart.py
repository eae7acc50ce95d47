"""The Docker engine restarting under a running job: the job ends in a clear state and
the server keeps working. This test restarts dockerd, so it only runs where the test
command started dockerd itself (scripts/setup.sh records its pid file)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from cloudpipe_sdk import Client, JobFailed, JobStatus

pytestmark = pytest.mark.docker
PID_FILE = Path("/var/run/cloudpipe-dockerd.pid")


def _stopped(pid: int) -> bool:
    """The process is gone, or a zombie: it has exited and only waits to be reaped, which
    depends on who its parent is (scripts/setup.sh's shell has usually exited by now)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _engine_answers() -> bool:
    try:
        engine = docker.from_env()
    except docker.errors.DockerException:
        return False
    try:
        return bool(engine.ping())
    except docker.errors.DockerException:
        return False
    finally:
        engine.close()


def start_dockerd(deadline: float) -> None:
    """Start dockerd the way scripts/setup.sh does and wait until it answers."""
    with open("/var/log/cloudpipe-dockerd.log", "ab") as log:
        process = subprocess.Popen(
            ["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    PID_FILE.write_text(str(process.pid))
    while not _engine_answers():
        assert time.monotonic() < deadline, "dockerd did not come back"
        time.sleep(0.5)


def stop_dockerd(deadline: float) -> None:
    pid = int(PID_FILE.read_text())
    os.kill(pid, signal.SIGTERM)
    while not _stopped(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


@pytest.fixture
def engine_put_back() -> Iterator[None]:
    """Whatever the test does, the Docker engine answers again afterwards: the rest of the
    suite (and anyone else on this machine) needs it."""
    try:
        yield
    finally:
        if not _engine_answers():
            start_dockerd(time.monotonic() + 120)


def _ours() -> bool:
    try:
        return Path(f"/proc/{int(PID_FILE.read_text())}/comm").read_text().strip() == "dockerd"
    except (OSError, ValueError):
        return False


@pytest.mark.skipif(not _ours(), reason="dockerd was not started by scripts/setup.sh: not ours to restart")
def test_engine_restart_mid_job_ends_the_job_clearly(client: Client, engine_put_back: None) -> None:
    job = client.shell("echo started; sleep 60")
    deadline = time.monotonic() + 60
    while "started" not in client.get(job.id).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    stop_dockerd(time.monotonic() + 60)
    start_dockerd(time.monotonic() + 120)
    with pytest.raises(JobFailed) as failure:
        job.result(timeout=120)
    assert failure.value.status in ("error", "killed")
    assert failure.value.reason, "the job says why it ended"
    assert job.stdout.startswith("started"), "output written before the restart is kept"
    assert client.shell("echo engine-is-back").result(timeout=120) == b"engine-is-back\n"
    assert client.get(job.id).status in (JobStatus.ERROR, JobStatus.KILLED)
