"""`Get` answers a job's ended attempts (`attempt_history`), in either view (a summary:
without output), `List` never does (a page of jobs stays small). The two-attempt story
(a lost runner, then a success, against a server killed mid-job) is in
tests/integration/test_attempt_history.py and tests/ui/test_jobs.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[pb_grpc.JobServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.JobServiceStub(channel)


def test_get_answers_the_ended_attempt_and_list_leaves_it_out(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    md = (("authorization", f"Bearer {server.api_key}"),)
    spec = pb.JobSpec(cmd="cat; echo out; echo err >&2; exit 3", stdin=b"input")
    (job_id,) = stub.Submit(pb.SubmitRequest(jobs=[spec]), timeout=5, metadata=md).ids
    deadline = time.monotonic() + 60
    while (job := stub.Get(pb.GetJobRequest(id=job_id), timeout=5, metadata=md)).status < pb.JOB_STATUS_DONE:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job.status == pb.JOB_STATUS_ERROR and job.attempts == 1 and job.stdout == b"inputout\n"
    (attempt,) = job.attempt_history
    assert (attempt.number, attempt.status, attempt.return_code) == (1, pb.JOB_STATUS_ERROR, 3)
    assert attempt.reason == job.reason and attempt.owner
    assert attempt.started_at == job.started_at and attempt.ended_at == job.finished_at

    summary = stub.Get(pb.GetJobRequest(id=job_id, view=pb.JOB_VIEW_SUMMARY), timeout=5, metadata=md)
    assert list(summary.attempt_history) == list(job.attempt_history), "every view of Get has the attempts"
    assert (summary.stderr, summary.stdout, summary.result, summary.spec.stdin) == (b"", b"", b"", b"")
    assert summary.status == job.status and summary.return_code == 3

    for view in (pb.JOB_VIEW_FULL, pb.JOB_VIEW_SUMMARY):
        (listed,) = stub.List(pb.ListJobsRequest(ids=[job_id], view=view), timeout=5, metadata=md).jobs
        assert listed.attempts == 1 and not listed.attempt_history
