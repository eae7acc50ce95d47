"""The auth interceptor in a real gRPC server: an authenticator that fails with an
unexpected exception is a bug, answered INTERNAL without its text; the traceback goes
to the server log only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_server.auth.base import Authenticator, Principal
from cloudpipe_server.rpc.interceptor import AuthInterceptor

SECRET_DETAIL = "connection string postgres://user:hunter2@db"


class Broken(Authenticator):
    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        raise RuntimeError(SECRET_DETAIL)


class Servicer(pb_grpc.JobServiceServicer):  # type: ignore[misc]
    async def QueueStats(self, request: pb.QueueStatsRequest, context: Any) -> pb.QueueStatsResponse:
        return pb.QueueStatsResponse()

    async def Wait(self, request: pb.WaitJobRequest, context: Any) -> AsyncIterator[pb.JobStatusEvent]:
        yield pb.JobStatusEvent()


@pytest.fixture
async def stub() -> AsyncIterator[Any]:
    server = grpc.aio.server(interceptors=[AuthInterceptor(Broken())])
    pb_grpc.add_JobServiceServicer_to_server(Servicer(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
    await server.stop(None)


async def test_an_authenticator_bug_is_internal_without_its_text(stub: Any, caplog: pytest.LogCaptureFixture) -> None:
    metadata = (("authorization", "Bearer some-key"),)
    calls = (
        lambda: stub.QueueStats(pb.QueueStatsRequest(), metadata=metadata, timeout=10),
        lambda: _drain(stub.Wait(pb.WaitJobRequest(id=1), metadata=metadata, timeout=10)),
    )
    with caplog.at_level(logging.ERROR, logger="cloudpipe_server.rpc.interceptor"):
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call()
            assert caught.value.code() == grpc.StatusCode.INTERNAL
            assert caught.value.details() == "internal server error"
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 2
    assert all(SECRET_DETAIL in str(record.exc_info[1]) for record in logged if record.exc_info)


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass
