"""Hostile and out-of-range requests are refused at the edge, naming the field, before
the server does any work for them (issue 16, items 8, 9 and 10)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.support import ServerProcess

HUGE_SECONDS = 1 << 62


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[pb_grpc.JobServiceStub]:
    with grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 512 << 20)]) as channel:
        yield pb_grpc.JobServiceStub(channel)


def refusal(server: ServerProcess, call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30, metadata=(("authorization", f"Bearer {server.api_key}"),))  # type: ignore[operator]
    return raised.value


def assert_invalid(error: grpc.RpcError, field: str) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()  # type: ignore[attr-defined]
    assert field in error.details(), error.details()  # type: ignore[attr-defined]


def spec(**fields: object) -> pb.JobSpec:
    return pb.JobSpec(cmd=fields.pop("cmd", "true"), **fields)  # type: ignore[arg-type]


# -- item 8: Timestamp and Duration out of range --------------------------------------------


def test_out_of_range_list_times_are_invalid_arguments_naming_the_field(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    negative_nanos = pb.ListJobsRequest()
    negative_nanos.created_after.nanos = -1
    assert_invalid(refusal(server, stub.List, negative_nanos), "created_after")
    far = pb.ListJobsRequest()
    far.created_before.seconds = HUGE_SECONDS
    assert_invalid(refusal(server, stub.List, far), "created_before")


def test_an_out_of_range_max_runtime_is_an_invalid_argument(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    job = spec()
    job.max_runtime.seconds = HUGE_SECONDS
    assert_invalid(refusal(server, stub.Submit, pb.SubmitRequest(jobs=[job])), "jobs[0].max_runtime")
    job = spec()
    job.max_runtime.nanos = -5
    job.max_runtime.seconds = 3
    assert_invalid(refusal(server, stub.Submit, pb.SubmitRequest(jobs=[job])), "jobs[0].max_runtime")


# -- item 9: numeric fields the executor cannot take ---------------------------------------


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        (pb.Resources(cpus=math.nan), "resources.cpus"),
        (pb.Resources(cpus=math.inf), "resources.cpus"),
        (pb.Resources(cpus=-math.inf), "resources.cpus"),
        (pb.Resources(cpus=1e12), "resources.cpus"),
        (pb.Resources(memory_bytes=(1 << 63) - 1), "resources.memory_bytes"),
        (pb.Resources(pids=(1 << 63) - 1), "resources.pids"),
        (pb.Resources(pids=-1), "resources.pids"),
    ],
)
def test_resources_the_engine_cannot_take_are_refused(
    stub: pb_grpc.JobServiceStub, server: ServerProcess, resources: pb.Resources, field: str
) -> None:
    request = pb.SubmitRequest(jobs=[spec(resources=resources)])
    assert_invalid(refusal(server, stub.Submit, request), f"jobs[0].{field}")


def test_a_max_runtime_of_1e11_seconds_is_refused(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    job = spec()
    job.max_runtime.seconds = 10**11
    assert_invalid(refusal(server, stub.Submit, pb.SubmitRequest(jobs=[job])), "jobs[0].max_runtime")


def test_sane_limits_are_still_accepted(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    job = spec(cmd="sleep 60", resources=pb.Resources(cpus=0.5, memory_bytes=64 << 20, pids=64))
    job.max_runtime.seconds = 7 * 24 * 3600
    md = (("authorization", f"Bearer {server.api_key}"),)
    [job_id] = stub.Submit(pb.SubmitRequest(jobs=[job]), timeout=10, metadata=md).ids
    stub.Kill(pb.KillJobRequest(id=job_id), timeout=10, metadata=md)


# -- item 10: requests bounded by size before work --------------------------------------------


def test_too_many_jobs_are_refused_before_conversion(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    # every job has an unknown result type: a server that converted first would answer
    # INVALID_ARGUMENT for jobs[0]; the count must be checked before any conversion.
    request = pb.SubmitRequest(jobs=[spec(result_type=99) for _ in range(100_000)])
    error = refusal(server, stub.Submit, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()  # type: ignore[attr-defined]
    assert "at most 10000 jobs" in error.details()  # type: ignore[attr-defined]


def test_a_submit_over_the_total_size_is_refused(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    jobs = [spec(stdin=b"x" * (60 << 20)) for _ in range(3)]
    error = refusal(server, stub.Submit, pb.SubmitRequest(jobs=jobs))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()  # type: ignore[attr-defined]
    assert "bytes per submit" in error.details()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("job", "field"),
    [
        (spec(cmd="echo " + "a" * (128 << 10)), "jobs[0].cmd"),
        (spec(env={"BIG": "v" * (128 << 10)}), "jobs[0].env"),
        (spec(env={f"V{i}": "v" * (100 << 10) for i in range(12)}), "jobs[0].env"),
        (spec(stdin=b"s" * ((64 << 20) + 1)), "jobs[0].stdin"),
        (spec(name="n" * 5000), "jobs[0].name"),
        (spec(tags={"t": "v" * 70_000}), "jobs[0].tags"),
        (spec(depends_on=list(range(1, 10_002))), "jobs[0].depends_on"),
    ],
    ids=["cmd", "env-value", "env-total", "stdin", "name", "tags", "depends_on"],
)
def test_oversized_fields_of_a_job_are_refused_naming_them(
    stub: pb_grpc.JobServiceStub, server: ServerProcess, job: pb.JobSpec, field: str
) -> None:
    assert_invalid(refusal(server, stub.Submit, pb.SubmitRequest(jobs=[job])), field)


def test_too_many_list_ids_are_refused(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    request = pb.ListJobsRequest(ids=list(range(1, 100_002)))
    assert_invalid(refusal(server, stub.List, request), "ids")


# -- item 13: names match as whole strings (`$` accepts a trailing newline) -------------------


@pytest.mark.parametrize(
    ("job", "field"),
    [(spec(env={"NAME\n": "x"}), "jobs[0].env"), (spec(image="alpine\n"), "jobs[0].image")],
    ids=["env-name", "image"],
)
def test_names_with_a_trailing_newline_are_refused(
    stub: pb_grpc.JobServiceStub, server: ServerProcess, job: pb.JobSpec, field: str
) -> None:
    assert_invalid(refusal(server, stub.Submit, pb.SubmitRequest(jobs=[job])), field)


def test_a_saved_job_name_with_a_trailing_newline_is_refused(server: ServerProcess) -> None:
    from cloudpipe_proto.v1 import schedules_pb2 as spb
    from cloudpipe_proto.v1 import schedules_pb2_grpc as spb_grpc

    with grpc.insecure_channel(server.address) as channel:
        saved = spb_grpc.SavedJobServiceStub(channel)
        request = spb.CreateSavedJobRequest(name="report\n", spec=spec())
        assert_invalid(refusal(server, saved.Create, request), "name")
