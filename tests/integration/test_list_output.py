"""List shows a running job's output so far, as Get does (the original API did too)."""

from __future__ import annotations

import time

import pytest

from cloudpipe_sdk import Client, JobStatus

pytestmark = pytest.mark.docker


def test_list_shows_the_output_of_running_jobs_too(client: Client) -> None:
    job = client.shell("echo listed-early; sleep 30", name="list-output")
    deadline = time.monotonic() + 30
    while not any("listed-early" in j.snapshot.stdout.decode() for j in client.list(names=["list-output"])):
        assert time.monotonic() < deadline, "List never showed the running job's output"
        time.sleep(0.1)
    job.kill()
    assert job.wait(30) is JobStatus.KILLED
