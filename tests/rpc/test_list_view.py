"""`List` with `view`: summaries never carry output, result or stdin; the default (no
view, as every caller before `view` existed) is the full job; every job names its image."""

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


def _finished(stub: pb_grpc.JobServiceStub, md: tuple[tuple[str, str], ...], job_id: int) -> pb.Job:
    deadline = time.monotonic() + 60
    while True:
        job = stub.Get(pb.GetJobRequest(id=job_id), timeout=5, metadata=md)
        if job.status >= pb.JOB_STATUS_DONE or time.monotonic() > deadline:
            assert job.status == pb.JOB_STATUS_DONE, job
            return job
        time.sleep(0.2)


def test_a_summary_list_leaves_out_output_result_and_stdin(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    md = (("authorization", f"Bearer {server.api_key}"),)
    spec = pb.JobSpec(cmd="cat; echo err >&2", name="list-view-probe", stdin=b"the stdin " * 1000)
    (job_id,) = stub.Submit(pb.SubmitRequest(jobs=[spec]), timeout=5, metadata=md).ids
    full = _finished(stub, md, job_id)
    assert full.stdout.startswith(b"the stdin") and full.stderr == b"err\n" and full.result

    summary = pb.ListJobsRequest(names=["list-view-probe"], view=pb.JOB_VIEW_SUMMARY)
    (listed,) = stub.List(summary, timeout=5, metadata=md).jobs
    assert listed.id == job_id and listed.status == pb.JOB_STATUS_DONE
    assert (listed.stdout, listed.stderr, listed.result, listed.spec.stdin) == (b"", b"", b"", b"")
    assert listed.spec.cmd == spec.cmd and listed.return_code == 0 and listed.HasField("runtime")

    for view in (pb.JOB_VIEW_UNSPECIFIED, pb.JOB_VIEW_FULL):
        (whole,) = stub.List(pb.ListJobsRequest(names=["list-view-probe"], view=view), timeout=5, metadata=md).jobs
        assert (whole.stdout, whole.stderr, whole.result, whole.spec.stdin) == (
            full.stdout,
            full.stderr,
            full.result,
            spec.stdin,
        )


def test_a_job_without_an_image_names_the_default_image_it_ran_in(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    md = (("authorization", f"Bearer {server.api_key}"),)
    ids = stub.Submit(
        pb.SubmitRequest(jobs=[pb.JobSpec(cmd="true"), pb.JobSpec(cmd="true", image="cloudpipe/runner-py2:latest")]),
        timeout=5,
        metadata=md,
    ).ids
    plain = _finished(stub, md, ids[0])
    assert plain.spec.image == "" and plain.image == "cloudpipe/runner-python3:latest"
    listed = stub.List(pb.ListJobsRequest(ids=ids, view=pb.JOB_VIEW_SUMMARY), timeout=5, metadata=md).jobs
    assert [job.image for job in listed] == ["cloudpipe/runner-python3:latest", "cloudpipe/runner-py2:latest"]


def test_an_unknown_view_is_invalid(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    md = (("authorization", f"Bearer {server.api_key}"),)
    with pytest.raises(grpc.RpcError) as raised:
        stub.List(pb.ListJobsRequest(view=42), timeout=5, metadata=md)  # type: ignore[arg-type]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "view" in raised.value.details()  # type: ignore[attr-defined]
