"""The sync client's RPC plumbing on grpc_testing's fake channel: error mapping,
retries of UNAVAILABLE, deadlines, credentials, idempotency keys on retried submits."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import grpc
import grpc_testing  # type: ignore[import-untyped]
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk import (
    AuthError,
    Client,
    CloudpipeError,
    InvalidRequest,
    Job,
    JobFailed,
    JobSpec,
    JobStatus,
    NotFound,
    ProtocolError,
    ResourceExhausted,
    ServerError,
    Timeout,
    Unavailable,
)
from cloudpipe_sdk._convert import snapshot_from_pb

SERVICE = pb.DESCRIPTOR.services_by_name["JobService"]


class Server:
    """Plays the server on a fake channel; the client runs in a worker thread."""

    def __init__(self) -> None:
        self.channel = grpc_testing.channel([SERVICE], grpc_testing.strict_real_time())
        self.timeouts: list[float | None] = []
        self._pool = ThreadPoolExecutor(1)

    def client(self, **options: Any) -> Client:
        return Client(channel=_Recording(self.channel, self.timeouts), api_key="k3y", **options)

    def run(self, call: Callable[[], Any]) -> Future[Any]:
        return self._pool.submit(call)

    def answer(
        self, method: str, response: Any = None, code: grpc.StatusCode = grpc.StatusCode.OK, details: str = ""
    ) -> tuple[dict[str, str], Any]:
        metadata, request, rpc = self.channel.take_unary_unary(SERVICE.methods_by_name[method])
        rpc.terminate(response, (), code, details)
        return dict(metadata), request


class _Recording(grpc.Channel):  # type: ignore[misc]
    """The fake channel, noting the deadline of every unary call. (grpc.intercept_channel
    cannot wrap grpc_testing's channel: its callables lack `wait_for_ready`.)"""

    def __init__(self, inner: Any, timeouts: list[float | None]) -> None:
        self._inner = inner
        self._timeouts = timeouts

    def unary_unary(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any
    ) -> Any:
        call = self._inner.unary_unary(method, request_serializer, response_deserializer)

        def invoke(request: Any, timeout: float | None = None, metadata: Any = None, **__: Any) -> Any:
            self._timeouts.append(timeout)
            return call(request, timeout=timeout, metadata=metadata)

        return invoke

    def unary_stream(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any
    ) -> Any:
        return self._inner.unary_stream(method, request_serializer, response_deserializer)

    def stream_unary(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any
    ) -> Any:
        return self._inner.stream_unary(method, request_serializer, response_deserializer)

    def stream_stream(
        self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any
    ) -> Any:
        return self._inner.stream_stream(method, request_serializer, response_deserializer)

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self._inner.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        self._inner.unsubscribe(callback)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Server]:
    for name in ("CLOUDPIPE_ADDRESS", "CLOUDPIPE_API_KEY", "CLOUDPIPE_PROFILE", "CLOUDPIPE_SERIALIZER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDPIPE_CONFIG", str(tmp_path / "none.toml"))
    yield Server()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.UNAUTHENTICATED, AuthError),
        (grpc.StatusCode.PERMISSION_DENIED, AuthError),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidRequest),
        (grpc.StatusCode.FAILED_PRECONDITION, InvalidRequest),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Timeout),
        (grpc.StatusCode.INTERNAL, CloudpipeError),
        (grpc.StatusCode.INTERNAL, ServerError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
        (grpc.StatusCode.UNIMPLEMENTED, ProtocolError),
    ],
)
def test_status_codes_become_typed_errors(server: Server, code: grpc.StatusCode, error: type[Exception]) -> None:
    client = server.client()
    pending = server.run(lambda: client.get(7))
    server.answer("Get", code=code, details="job 7 says no")
    with pytest.raises(error, match="job 7 says no") as raised:
        pending.result(timeout=10)
    assert raised.value.code == code.name  # type: ignore[attr-defined]


def test_every_call_carries_the_key_and_a_deadline(server: Server) -> None:
    client = server.client(rpc_timeout=7.5)
    pending = server.run(client.queue_stats)
    metadata, _ = server.answer("QueueStats", pb.QueueStatsResponse(counts={"done": 2}))
    assert pending.result(timeout=10) == {"done": 2}
    assert metadata["authorization"] == "Bearer k3y"
    assert server.timeouts == [7.5]


def test_unavailable_is_retried_with_backoff_until_it_answers(server: Server) -> None:
    client = server.client()
    pending = server.run(lambda: client.kill_all())
    server.answer("KillAll", code=grpc.StatusCode.UNAVAILABLE, details="restarting")
    server.answer("KillAll", code=grpc.StatusCode.UNAVAILABLE, details="restarting")
    server.answer("KillAll", pb.KillAllResponse(ids=[1, 2]))
    assert pending.result(timeout=10) == [1, 2]


def test_unavailable_for_longer_than_retry_for_raises(server: Server) -> None:
    client = server.client(retry_for=0.3)
    pending = server.run(lambda: client.get(1))

    def always_down() -> None:
        while True:
            server.answer("Get", code=grpc.StatusCode.UNAVAILABLE, details="down")

    threading.Thread(target=always_down, daemon=True).start()
    with pytest.raises(Unavailable, match="down"):
        pending.result(timeout=10)


def test_a_retried_submit_sends_the_same_idempotency_keys(server: Server) -> None:
    client = server.client()
    pending = server.run(lambda: client.shell("echo once"))
    _, first = server.answer("Submit", code=grpc.StatusCode.UNAVAILABLE, details="answer lost")
    _, second = server.answer("Submit", pb.SubmitResponse(ids=[41]))
    assert pending.result(timeout=10).id == 41
    assert first.jobs[0].idempotency_key and first.jobs[0].idempotency_key == second.jobs[0].idempotency_key
    another = server.run(lambda: client.shell("echo once"))
    _, third = server.answer("Submit", pb.SubmitResponse(ids=[42]))
    assert another.result(timeout=10).id == 42
    assert third.jobs[0].idempotency_key != first.jobs[0].idempotency_key


def test_many_jobs_go_in_batches_with_distinct_keys(server: Server) -> None:
    client = server.client()
    specs = [JobSpec(cmd=f"echo {i}") for i in range(600)]
    pending = server.run(lambda: client._submit(specs))
    sizes: list[int] = []
    keys: set[str] = set()
    for start in (0, 250, 500):
        _, request = server.answer(
            "Submit", pb.SubmitResponse(ids=range(start + 1, start + 1 + len(specs[start : start + 250])))
        )
        sizes.append(len(request.jobs))
        keys.update(job.idempotency_key for job in request.jobs)
    assert [job.id for job in pending.result(timeout=10)] == list(range(1, 601))
    assert sizes == [250, 250, 100] and len(keys) == 600


def test_stdin_written_around_an_attach_reconnect_reaches_the_new_connection(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudpipe_sdk import _stream

    client = server.client()
    session = _stream.Attachment(client.transport, 9)
    attach = SERVICE.methods_by_name["Attach"]
    real_sleep = time.sleep

    def write_while_reconnecting(seconds: float) -> None:
        session.write(b"during ")  # the first connection is dead, the next not yet open
        real_sleep(seconds)

    monkeypatch.setattr(_stream, "time", SimpleNamespace(sleep=write_while_reconnecting))
    events = server.run(lambda: list(session))
    _, first = server.channel.take_stream_stream(attach)
    assert first.take_request().start.id == 9
    first.terminate((), grpc.StatusCode.UNAVAILABLE, "server restarts")
    _, second = server.channel.take_stream_stream(attach)
    assert second.take_request().start.id == 9
    session.write(b"after")
    received: queue.Queue[bytes] = queue.Queue()

    def read_stdin() -> None:
        for _ in range(2):
            received.put(second.take_request().stdin)

    threading.Thread(target=read_stdin, daemon=True).start()
    try:
        assert [received.get(timeout=5) for _ in range(2)] == [b"during ", b"after"]
        second.send_response(pb.AttachEvent(exit=pb.ExitEvent(status=pb.JOB_STATUS_DONE, return_code=0)))
        second.terminate((), grpc.StatusCode.OK, "")
        assert [type(event).__name__ for event in events.result(timeout=5)] == ["Exit"]
    finally:
        session.close()


def test_exception_raises_errors_of_waiting_instead_of_returning_them(server: Server) -> None:
    job = server.client().job(5)
    pending = server.run(job.exception)
    _, _, wait = server.channel.take_unary_stream(SERVICE.methods_by_name["Wait"])
    wait.terminate((), grpc.StatusCode.UNAUTHENTICATED, "key revoked")
    with pytest.raises(AuthError, match="key revoked"):
        pending.result(timeout=10)


def test_exception_returns_the_jobs_own_failure(server: Server) -> None:
    job = server.client().job(5)
    pending = server.run(job.exception)
    _, _, wait = server.channel.take_unary_stream(SERVICE.methods_by_name["Wait"])
    wait.send_response(pb.JobStatusEvent(id=5, status=pb.JOB_STATUS_ERROR))
    server.answer("Get", pb.Job(id=5, status=pb.JOB_STATUS_ERROR, reason="exit 3"))
    failure = pending.result(timeout=10)
    assert isinstance(failure, JobFailed) and failure.reason == "exit 3"
    wait.terminate((), grpc.StatusCode.OK, "")


def test_an_abandoned_map_stops_killing_its_jobs_at_the_first_unavailable(server: Server) -> None:
    client = server.client(retry_for=30)
    pending = server.run(lambda: list(client.map(abs, [1, 2, 3], timeout=0.3)))
    server.answer("Submit", pb.SubmitResponse(ids=[1, 2, 3]))
    server.channel.take_unary_stream(SERVICE.methods_by_name["WatchMany"])  # no job finishes
    _, kill = server.answer("Kill", code=grpc.StatusCode.UNAVAILABLE, details="server down")
    assert kill.id == 1
    with pytest.raises(Timeout):
        pending.result(timeout=5)  # not after retry_for, nor after one Kill per job
    assert len(server.timeouts) == 2  # Submit, one Kill


def test_a_finished_job_gives_its_result_at_once_even_with_timeout_zero(server: Server) -> None:
    job = Job(server.client().transport, 5, snapshot_from_pb(pb.Job(id=5, status=pb.JOB_STATUS_DONE, result=b"hi\n")))
    assert server.run(lambda: job.result(timeout=0)).result(timeout=5) == b"hi\n"
    assert server.run(lambda: job.wait(timeout=0)).result(timeout=5) is JobStatus.DONE
    assert server.timeouts == []  # no call made


def test_waiting_without_timeout_gives_up_after_retry_for_of_unavailability(server: Server) -> None:
    job = server.client(retry_for=0.5).job(5)
    pending = server.run(job.result)

    def always_down() -> None:
        while True:
            _, _, wait = server.channel.take_unary_stream(SERVICE.methods_by_name["Wait"])
            wait.terminate((), grpc.StatusCode.UNAVAILABLE, "down")

    threading.Thread(target=always_down, daemon=True).start()
    with pytest.raises(Unavailable, match=r"job 5: cannot reach the server at .* \(tried for 0\.5 s\)"):
        pending.result(timeout=10)


def test_an_executor_fails_its_pending_futures_when_the_server_stays_away(server: Server) -> None:
    executor = server.client(retry_for=0.5).executor()
    submitted = server.run(lambda: executor.submit(abs, -1))
    server.answer("Submit", pb.SubmitResponse(ids=[8]))
    future = submitted.result(timeout=10)

    def always_down() -> None:
        while True:
            _, _, watch = server.channel.take_unary_stream(SERVICE.methods_by_name["WatchMany"])
            watch.terminate((), grpc.StatusCode.UNAVAILABLE, "down")

    threading.Thread(target=always_down, daemon=True).start()
    assert isinstance(future.exception(timeout=10), Unavailable)
    executor.shutdown()


def test_every_status_code_has_a_typed_error() -> None:
    from cloudpipe_sdk._errors import _CODES

    assert set(_CODES) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert all(cls is not CloudpipeError for cls in _CODES.values())


def test_answers_this_sdk_cannot_read_raise_protocol_error() -> None:
    from cloudpipe_sdk._convert import event_from_pb
    from cloudpipe_sdk._serialize import load_envelope

    with pytest.raises(ProtocolError):
        snapshot_from_pb(pb.Job(id=1, status=99))  # a status a newer server added
    with pytest.raises(ProtocolError):
        event_from_pb(pb.AttachEvent())  # an event this SDK does not know
    with pytest.raises(ProtocolError):
        load_envelope(b"not a pickle", 1)
    with pytest.raises(ProtocolError):
        load_envelope(__import__("cloudpickle").dumps([1, 2]), 1)


def test_a_server_returning_the_wrong_number_of_ids_is_refused(server: Server) -> None:
    client = server.client()
    pending = server.run(lambda: client.shell("echo once"))
    server.answer("Submit", pb.SubmitResponse(ids=[1, 2]))
    with pytest.raises(ProtocolError, match="2 ids for 1 jobs"):
        pending.result(timeout=10)
