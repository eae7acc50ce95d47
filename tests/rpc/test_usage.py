"""JobService.Usage over a real server: the caller's queue counts and finished jobs per
minute, every account's only for the admin (PERMISSION_DENIED otherwise, as for an
account of an anonymous server), bad windows refused by name."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.rpc.test_grpc_api import auth
from tests.support import ServerProcess, start_server


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[pb_grpc.JobServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]


def test_usage_counts_the_callers_jobs_and_every_accounts_for_the_admin(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    before = stub.Usage(pb.UsageRequest(), metadata=auth(server))
    assert before.window_minutes == 60 and len(before.done_per_minute) == 60 and set(before.counts) >= {"queued"}
    ids = stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="true")] * 3), metadata=auth(server)).ids
    deadline = time.monotonic() + 30
    while True:
        after = stub.Usage(pb.UsageRequest(window_minutes=5), metadata=auth(server))
        if sum(after.done_per_minute) + sum(after.failed_per_minute) >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(after.done_per_minute) == 5
    assert sum(after.done_per_minute) + sum(after.failed_per_minute) >= 3
    everyone = stub.Usage(pb.UsageRequest(all_accounts=True), metadata=auth(server))
    assert "admin" in [row.account for row in everyone.accounts]
    assert sum(everyone.counts.values()) >= sum(after.counts.values())
    with pytest.raises(grpc.RpcError) as refused:
        stub.Usage(pb.UsageRequest(window_minutes=5000), metadata=auth(server))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "window_minutes" in (refused.value.details() or "")  # type: ignore[attr-defined]


def test_an_account_is_refused_every_accounts_usage(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory.mktemp("usage"), env={"CLOUDPIPE_ALLOW_ANONYMOUS": "true"}, fake=True)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
            alice = (("x-cloudpipe-account", "alice"),)
            stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="true")]), metadata=(("x-cloudpipe-account", "bob"),))
            mine = stub.Usage(pb.UsageRequest(), metadata=alice)
            assert sum(mine.counts.values()) == 0 and not mine.accounts  # bob's job is not alice's
            with pytest.raises(grpc.RpcError) as refused:
                stub.Usage(pb.UsageRequest(all_accounts=True), metadata=alice)
            assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    finally:
        assert server.stop() == 0, server.log
