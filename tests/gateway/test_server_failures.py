"""How the gateway answers gRPC failures that a healthy test server never produces: a
real gateway process in front of a scripted gRPC server that fails on command."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.gateway.support import GatewayProcess, assert_api_error, job_payload, start_gateway

MAX_JID = (1 << 63) - 1  # the gateway's credential check lists this JID


class Scripted(pb_grpc.JobServiceServicer):  # type: ignore[misc]
    """Accepts every credential; a Submit, or a List other than the credential check,
    fails with `self.failure` (or succeeds while it is None)."""

    def __init__(self) -> None:
        self.failure: grpc.StatusCode | None = None
        self.submits = 0

    def List(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> pb.ListJobsResponse:
        if list(request.ids) != [MAX_JID] and self.failure is not None:
            context.abort(self.failure, "scripted failure")
        return pb.ListJobsResponse()

    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> Any:
        self.submits += 1
        if self.failure is not None:
            context.abort(self.failure, "scripted failure")
        return pb.SubmitResponse(ids=list(range(1, len(request.jobs) + 1)))


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scripted, GatewayProcess]]:
    servicer = Scripted()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_JobServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        gateway = start_gateway(f"127.0.0.1:{port}", Path(tmp_path_factory.mktemp("scripted")))
        yield servicer, gateway
        assert gateway.stop() == 0, gateway.log
    finally:
        server.stop(None)


def request(gateway: GatewayProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}{path}", auth=("admin", "key"), timeout=30, **kwargs)


def test_a_submit_refused_as_unavailable_is_retried(scripted: tuple[Scripted, GatewayProcess]) -> None:
    servicer, gateway = scripted
    servicer.failure = grpc.StatusCode.UNAVAILABLE
    response = request(gateway, "POST", "/v1/job", json={"jobs": [job_payload()]})
    assert_api_error(response, 503, "JQUEUE", "Unable to enqueue your job.", retry=True)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    ],
)
def test_a_submit_that_may_have_been_stored_is_not_retried(
    scripted: tuple[Scripted, GatewayProcess], code: grpc.StatusCode
) -> None:
    """multyvac's retry is a new request: it would enqueue the jobs a second time."""
    servicer, gateway = scripted
    servicer.failure = code
    before = servicer.submits
    response = request(gateway, "POST", "/v1/job", json={"jobs": [job_payload()]})
    error = assert_api_error(response, 503, "JQUEUE", "Unable to enqueue your job.", retry=False)
    assert "may have enqueued" in error["hint"]
    assert servicer.submits == before + 1


def test_a_list_answer_too_large_for_grpc_is_not_retried(scripted: tuple[Scripted, GatewayProcess]) -> None:
    """The same request would fail again: multyvac must not retry it forever."""
    servicer, gateway = scripted
    servicer.failure = grpc.StatusCode.RESOURCE_EXHAUSTED
    error = assert_api_error(request(gateway, "GET", "/v1/job"), 500, "JLIST", retry=False)
    assert error["message"].startswith("Unable to list jobs: the answer is too large")
    assert "fewer jobs" in error["hint"]
