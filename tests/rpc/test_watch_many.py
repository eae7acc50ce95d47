"""WatchMany: one terminal event per job, at once for finished jobs, as the others end."""

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
        yield pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]


def submit(stub: pb_grpc.JobServiceStub, server: ServerProcess, *cmds: str) -> list[int]:
    metadata = (("authorization", f"Bearer {server.api_key}"),)
    request = pb.SubmitRequest(jobs=[pb.JobSpec(cmd=cmd) for cmd in cmds])
    return list(stub.Submit(request, timeout=10, metadata=metadata).ids)


def watch(
    stub: pb_grpc.JobServiceStub, server: ServerProcess, ids: list[int], timeout: float = 60
) -> Iterator[pb.JobStatusEvent]:
    metadata = (("authorization", f"Bearer {server.api_key}"),)
    return stub.WatchMany(pb.WatchManyRequest(ids=ids), timeout=timeout, metadata=metadata)  # type: ignore[no-any-return]


def test_each_job_is_reported_once_when_it_finishes_in_finishing_order(
    stub: pb_grpc.JobServiceStub, server: ServerProcess
) -> None:
    slow, fast, failing = submit(stub, server, "sleep 2; echo slow", "echo fast", "exit 3")
    started = time.monotonic()
    events = list(watch(stub, server, [slow, fast, failing, fast]))
    assert sorted(e.id for e in events) == sorted([slow, fast, failing])
    assert events[-1].id == slow and time.monotonic() - started >= 1.5
    by_id = {e.id: e for e in events}
    assert by_id[fast].status == pb.JOB_STATUS_DONE and by_id[fast].return_code == 0
    assert by_id[failing].status == pb.JOB_STATUS_ERROR and by_id[failing].return_code == 3


def test_finished_jobs_are_reported_at_once(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    ids = submit(stub, server, "true", "true")
    list(watch(stub, server, ids))
    started = time.monotonic()
    assert sorted(e.id for e in watch(stub, server, ids, timeout=5)) == sorted(ids)
    assert time.monotonic() - started < 1


def test_a_killed_job_ends_its_watch(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    [job] = submit(stub, server, "sleep 60")
    metadata = (("authorization", f"Bearer {server.api_key}"),)
    stream = watch(stub, server, [job])
    stub.Kill(pb.KillJobRequest(id=job), timeout=10, metadata=metadata)
    assert [e.status for e in stream] == [pb.JOB_STATUS_KILLED]


def test_unknown_ids_are_not_found_before_any_event(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    [done] = submit(stub, server, "true")
    with pytest.raises(grpc.RpcError) as raised:
        list(watch(stub, server, [done, 1 << 40, 1 << 41]))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert str(1 << 40) in raised.value.details()  # type: ignore[attr-defined]


def test_an_empty_watch_is_invalid(stub: pb_grpc.JobServiceStub, server: ServerProcess) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        list(watch(stub, server, []))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
