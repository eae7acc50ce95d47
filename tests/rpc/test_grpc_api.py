"""The gRPC API as any client sees it: auth, status codes, reflection, health."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.support import ServerProcess, code_of


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[pb_grpc.JobServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.JobServiceStub(channel)


def auth(server: ServerProcess) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {server.api_key}"),)


def test_calls_without_or_with_wrong_credentials_are_unauthenticated(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    request = pb.ListJobsRequest()
    assert code_of(lambda: stub.List(request, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    wrong = (("authorization", "Bearer not-the-key"),)
    assert code_of(lambda: stub.List(request, timeout=5, metadata=wrong)) == grpc.StatusCode.UNAUTHENTICATED
    other_account = (*auth(server), ("x-cloudpipe-account", "mallory"))
    assert code_of(lambda: stub.List(request, timeout=5, metadata=other_account)) == grpc.StatusCode.UNAUTHENTICATED
    assert stub.List(request, timeout=5, metadata=auth(server)) is not None


def test_the_key_never_appears_in_the_server_log(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    stub.List(pb.ListJobsRequest(), timeout=5, metadata=auth(server))
    with pytest.raises(grpc.RpcError):
        stub.List(pb.ListJobsRequest(), timeout=5, metadata=(("authorization", "Bearer guess-key-123"),))
    assert server.api_key not in server.log
    assert "guess-key-123" not in server.log


def test_invalid_jobs_are_rejected_naming_the_field(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    cases = {
        "jobs[0].cmd": pb.JobSpec(cmd=""),
        "jobs[1].result_source": pb.JobSpec(cmd="true", result_source="magic"),
        "jobs[0].image": pb.JobSpec(cmd="true", image="bad image name"),
        "jobs[0].resources": pb.JobSpec(cmd="true", resources=pb.Resources(cpus=-1)),
        "jobs[0].result_type": pb.JobSpec(cmd="true", result_type=99),  # type: ignore[arg-type]
    }
    for field, spec in cases.items():
        jobs = [pb.JobSpec(cmd="true"), spec] if field.startswith("jobs[1]") else [spec]
        with pytest.raises(grpc.RpcError) as raised:
            stub.Submit(pb.SubmitRequest(jobs=jobs), timeout=5, metadata=auth(server))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert field in raised.value.details()  # type: ignore[attr-defined]


def test_a_rejected_batch_stores_nothing(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    before = stub.List(pb.ListJobsRequest(names=["batch-probe"]), timeout=5, metadata=auth(server))
    with pytest.raises(grpc.RpcError):
        stub.Submit(
            pb.SubmitRequest(jobs=[pb.JobSpec(cmd="true", name="batch-probe"), pb.JobSpec(cmd="")]),
            timeout=5,
            metadata=auth(server),
        )
    after = stub.List(pb.ListJobsRequest(names=["batch-probe"]), timeout=5, metadata=auth(server))
    assert len(after.jobs) == len(before.jobs)


def test_unknown_and_missing_ids(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    md = auth(server)
    assert (
        code_of(lambda: stub.Get(pb.GetJobRequest(id=987654321), timeout=5, metadata=md)) == grpc.StatusCode.NOT_FOUND
    )
    assert code_of(lambda: stub.Get(pb.GetJobRequest(), timeout=5, metadata=md)) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.Kill(pb.KillJobRequest(id=987654321), timeout=5, metadata=md)) == (
        grpc.StatusCode.NOT_FOUND
    )
    waiting = stub.Wait(pb.WaitJobRequest(id=987654321), timeout=5, metadata=md)
    assert code_of(lambda: list(waiting)) == grpc.StatusCode.NOT_FOUND


def test_a_queued_job_can_be_killed_and_wait_streams_its_end(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    md = auth(server)
    [parent] = stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 30")]), timeout=5, metadata=md).ids
    [child] = stub.Submit(
        pb.SubmitRequest(jobs=[pb.JobSpec(cmd="true", depends_on=[parent])]), timeout=5, metadata=md
    ).ids
    assert stub.Get(pb.GetJobRequest(id=child), timeout=5, metadata=md).status == pb.JOB_STATUS_WAITING
    killed = stub.Kill(pb.KillJobRequest(id=child), timeout=5, metadata=md)
    assert killed.status == pb.JOB_STATUS_KILLED and killed.kill_requested
    events = list(stub.Wait(pb.WaitJobRequest(id=child), timeout=5, metadata=md))
    assert [e.status for e in events] == [pb.JOB_STATUS_KILLED]
    stub.Kill(pb.KillJobRequest(id=parent), timeout=5, metadata=md)
    final = list(stub.Wait(pb.WaitJobRequest(id=parent), timeout=30, metadata=md))
    assert final[-1].status == pb.JOB_STATUS_KILLED


def test_queue_stats_counts_every_status(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    counts = stub.QueueStats(pb.QueueStatsRequest(), timeout=5, metadata=auth(server)).counts
    assert set(counts) == {"waiting", "queued", "processing", "done", "error", "killed", "stalled"}


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    return subprocess.run([binary, "-plaintext", *args], capture_output=True, text=True, timeout=30, check=False)


def test_grpcurl_lists_services_through_reflection(server: ServerProcess) -> None:
    listed = grpcurl(server.address, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        "cloudpipe.v1.JobService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = grpcurl(server.address, "describe", "cloudpipe.v1.JobService")
    assert "rpc Submit" in described.stdout and "rpc Wait" in described.stdout


def test_grpcurl_can_submit_with_a_key(server: ServerProcess) -> None:
    body = json.dumps({"jobs": [{"cmd": "echo from-grpcurl"}]})
    done = grpcurl(
        "-H", f"authorization: Bearer {server.api_key}", "-d", body, server.address, "cloudpipe.v1.JobService/Submit"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ids"]
    refused = grpcurl("-d", body, server.address, "cloudpipe.v1.JobService/Submit")
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr


def test_health_is_serving(server: ServerProcess) -> None:
    checked = grpcurl(server.address, "grpc.health.v1.Health/Check")
    assert checked.returncode == 0 and "SERVING" in checked.stdout


def test_ids_beyond_the_store_range_are_simply_not_found(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    md = auth(server)
    huge = (1 << 64) - 1
    assert code_of(lambda: stub.Get(pb.GetJobRequest(id=huge), timeout=5, metadata=md)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.Kill(pb.KillJobRequest(id=huge), timeout=5, metadata=md)) == grpc.StatusCode.NOT_FOUND
    assert list(stub.List(pb.ListJobsRequest(ids=[huge]), timeout=5, metadata=md).jobs) == []
    assert stub.List(pb.ListJobsRequest(after_id=huge), timeout=5, metadata=md) is not None
