"""Submit-time compatibility: a function job its runner image cannot load is refused
with FAILED_PRECONDITION naming the mismatch and the fix, before anything runs."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


@pytest.fixture
def submit(server: ServerProcess) -> Iterator[object]:
    metadata = (("authorization", f"Bearer {server.api_key}"),)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]

        def call(*specs: pb.JobSpec) -> list[int]:
            return list(stub.Submit(pb.SubmitRequest(jobs=list(specs)), timeout=10, metadata=metadata).ids)

        yield call


def function_spec(**fields: object) -> pb.JobSpec:
    return pb.JobSpec(cmd="python3 -m cloudpipe_runner", result_type=pb.RESULT_TYPE_PICKLE, **fields)  # type: ignore[arg-type]


def refusal(submit: object, *specs: pb.JobSpec) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        submit(*specs)  # type: ignore[operator]
    return raised.value


def test_a_client_python_the_runner_lacks_is_refused_with_the_fix(submit: object) -> None:
    error = refusal(submit, pb.JobSpec(cmd="true"), function_spec(client_python="3.99", serializer="cloudpickle"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    details = error.details()  # type: ignore[attr-defined]
    assert details.startswith("jobs[1]: Python version mismatch")
    assert "Python 3.99" in details and "has Python 3.11" in details
    assert "runner_images/build.py --only python3 --base-python3 python:3.99-slim" in details


def test_a_serializer_the_runner_lacks_is_refused(submit: object) -> None:
    error = refusal(submit, function_spec(client_python="3.11", serializer="marshmallow"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "serialized with marshmallow" in error.details()  # type: ignore[attr-defined]
    assert "cloudpickle, dill" in error.details()  # type: ignore[attr-defined]


def test_a_refused_batch_stores_nothing_and_matching_jobs_pass(submit: object, server: ServerProcess) -> None:
    refusal(submit, pb.JobSpec(cmd="true", name="compat-batch"), function_spec(client_python="2.7"))
    metadata = (("authorization", f"Bearer {server.api_key}"),)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        assert not stub.List(pb.ListJobsRequest(names=["compat-batch"]), timeout=10, metadata=metadata).jobs
    assert len(submit(function_spec(client_python="3.11", serializer="dill", name="compat-ok"))) == 1  # type: ignore[operator]


def test_images_without_runner_labels_are_not_checked(submit: object) -> None:
    spec = function_spec(client_python="3.99", serializer="cloudpickle", image="cloudpipe/base-bookworm:latest")
    assert len(submit(spec)) == 1  # type: ignore[operator]
