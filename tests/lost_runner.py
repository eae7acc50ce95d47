"""A job run twice, for real: a restartable shell job whose server is killed with
SIGKILL mid-run; a server started again on the same data (another identity) reaps the
lost attempt, requeues the job and runs it to the end. Its attempt history then holds
the lost attempt (QUEUED, requeued) and the one that ended DONE."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from cloudpipe_sdk import JobStatus
from tests.support import ServerProcess, start_server

LEASE_SECONDS = "3"  # the lost attempt is reaped this long after the server died
COMMAND = "echo started; sleep 2; echo again"


def a_job_run_twice(data_dir: Path, env: dict[str, str] | None = None) -> tuple[ServerProcess, int]:
    """The server now serving `data_dir` (the caller stops it) and the id of a job whose
    first attempt was lost and whose second ended DONE."""
    env = {"CLOUDPIPE_LEASE_SECONDS": LEASE_SECONDS, "CLOUDPIPE_WARM_POOL": "false", **(env or {})}
    first = start_server(data_dir, env=env)
    try:
        with first.client() as client:
            job = client.shell(COMMAND, name="run-twice", restartable=True)
            deadline = time.monotonic() + 60
            while not client.get(job.id).snapshot.stdout.startswith(b"started"):
                assert time.monotonic() < deadline, "the first attempt never started"
                time.sleep(0.05)
    finally:
        first.stop(signal.SIGKILL)
    again = start_server(data_dir, env={**env, "CLOUDPIPE_ADMIN_KEY": first.api_key})
    try:
        with again.client() as client:
            assert client.get(job.id).wait(timeout=90) is JobStatus.DONE
    except BaseException:
        again.stop()
        raise
    return again, job.id
