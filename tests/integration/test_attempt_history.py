"""A job whose first runner was lost (its server killed with SIGKILL) and that ran again
to the end: the SDK's snapshot holds both attempts, and `cloudpipe show` prints them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudpipe_sdk import Attempt, JobStatus
from tests.cli.support import cloudpipe
from tests.lost_runner import a_job_run_twice

pytestmark = pytest.mark.docker


def test_a_job_run_twice_shows_its_lost_attempt_then_its_success(tmp_path: Path, docker_engine: object) -> None:
    server, job_id = a_job_run_twice(tmp_path)
    try:
        with server.client() as client:
            snapshot = client.get(job_id).snapshot
        assert snapshot.attempts == 2 and snapshot.stdout == b"started\nagain\n"
        lost, done = snapshot.attempt_history
        assert isinstance(lost, Attempt)
        assert (lost.number, lost.status, lost.return_code) == (1, JobStatus.QUEUED, None)
        assert "requeued" in lost.reason and "lost" in lost.reason and lost.owner
        assert (done.number, done.status, done.return_code) == (2, JobStatus.DONE, 0)
        assert done.owner and done.owner != lost.owner, "another server ran it again"
        assert lost.started_at and lost.ended_at and done.started_at and done.ended_at
        assert lost.started_at < lost.ended_at <= done.started_at < done.ended_at
        assert done.ended_at == snapshot.finished_at

        shown = cloudpipe(server, "show", str(job_id))
        assert shown.exit_code == 0, shown.stderr
        lines = shown.stdout.splitlines()
        at = lines.index("attempts: 2")
        assert lines[at + 1].startswith("  #1 requeued ") and "requeued after its runner was lost" in lines[at + 1]
        assert lines[at + 2].startswith("  #2 done ") and " exit 0 on " in lines[at + 2]

        as_json = json.loads(cloudpipe(server, "show", "--json", str(job_id)).stdout)
        history = as_json["attempt_history"]
        assert [(a["number"], a["status"], a["return_code"]) for a in history] == [(1, "queued", None), (2, "done", 0)]
        assert history[1]["ended_at"].endswith("Z") and history[1]["owner"] == done.owner
    finally:
        server.stop()
