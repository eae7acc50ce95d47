"""Jobs with a terminal (`tty=True`) on real containers, and the edges of Attach's
`resize`, over real gRPC: sizes out of bounds, a job without a terminal, a function
job asking for one."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk import Client, Exit, InvalidRequest, JobStatus, Output
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def read_until(session: object, text: bytes, timeout: float = 60) -> bytes:
    """Output of the attach session until `text` is in it."""
    seen = b""
    deadline = time.monotonic() + timeout
    for event in session:  # type: ignore[attr-defined]
        if isinstance(event, Output):
            assert event.stream == "stdout", "a tty job's output is one stream"
            seen += event.data
            if text in seen:
                return seen
        assert not isinstance(event, Exit), f"the job ended before {text!r}: {seen!r}"
        assert time.monotonic() < deadline, f"{text!r} never came: {seen!r}"
    raise AssertionError(f"the stream ended before {text!r}: {seen!r}")


@pytest.mark.timeout(120)
def test_a_tty_job_has_a_terminal_of_the_size_it_is_given(client: Client) -> None:
    job = client.shell("tty; read line; stty size; echo to-stderr >&2; read line; stty size", tty=True)
    assert job.snapshot.spec.tty and job.snapshot.spec.interactive, "tty implies interactive"
    with job.attach() as session:
        session.resize(33, 101)
        assert b"/dev/pts/" in read_until(session, b"/dev/pts/")
        session.write(b"go\r")
        seen = read_until(session, b"to-stderr")
        assert b"33 101\r\n" in seen, seen
        assert seen.count(b"go") == 1, "the terminal echoes once"
        session.resize(40, 120)
        time.sleep(0.5)
        session.write(b"again\r")
        assert b"40 120\r\n" in read_until(session, b"40 120")
    assert job.wait(60) is JobStatus.DONE
    assert job.stderr == "", "stderr comes on the terminal, as stdout"
    assert "to-stderr" in job.stdout


@pytest.mark.timeout(120)
def test_ctrl_c_typed_into_a_tty_job_interrupts_its_foreground_command(client: Client) -> None:
    job = client.shell("bash --norc -i", tty=True)
    with job.attach() as session:
        read_until(session, b"$ ")
        session.write(b"sleep 300\r")
        read_until(session, b"sleep 300\r\n")
        time.sleep(1.5)  # bash has started the sleep
        session.write(b"\x03")  # Ctrl-C, as a terminal sends it: SIGINT from the job's pty
        read_until(session, b"^C")
        session.write(b"echo after-$?\r")
        assert b"after-130" in read_until(session, b"after-1")
        session.write(b"exit 4\r")
        for event in session:
            if isinstance(event, Exit):
                assert event.return_code == 4
                break
    assert job.wait(60) is JobStatus.ERROR


def test_a_tty_job_keeps_every_limit_of_a_job(client: Client) -> None:
    job = client.shell("id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ls /sys/class/net", tty=True)
    assert job.wait(60) is JobStatus.DONE
    lines = job.stdout.replace("\r\n", "\n").split()
    assert lines[0] != "0", "not root"
    assert lines[1:5] == ["NoNewPrivs:", "1", "CapEff:", "0000000000000000"] or lines[1:5] == [
        "CapEff:",
        "0000000000000000",
        "NoNewPrivs:",
        "1",
    ], job.stdout
    assert lines[5:] == ["lo"], "no network unless asked"


def test_tty_implies_interactive_and_is_refused_for_a_function_job(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        shell = pb.JobSpec(cmd="true", tty=True)  # interactive not set: the server sets it
        (job_id,) = stub.Submit(pb.SubmitRequest(jobs=[shell]), timeout=30, metadata=auth(server)).ids
        stored = stub.Get(pb.GetJobRequest(id=job_id), timeout=30, metadata=auth(server)).spec
        assert stored.tty and stored.interactive
        function = pb.JobSpec(cmd="python3 -m runner", serializer="cloudpickle", tty=True)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Submit(pb.SubmitRequest(jobs=[function]), timeout=30, metadata=auth(server))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "jobs[0].tty: a function job cannot have a terminal" in (raised.value.details() or "")


def auth(server: ServerProcess) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {server.api_key}"),)


class RawAttach:
    """One Attach call on the wire, its requests fed by `send`."""

    def __init__(self, server: ServerProcess, job_id: int) -> None:
        self._channel = grpc.insecure_channel(server.address)
        self._requests: queue.Queue[pb.AttachRequest | None] = queue.Queue()
        self._requests.put(pb.AttachRequest(start=pb.AttachStart(id=job_id)))
        stub = pb_grpc.JobServiceStub(self._channel)
        self.events = stub.Attach(iter(self._requests.get, None), timeout=60, metadata=auth(server))

    def send(self, request: pb.AttachRequest) -> None:
        self._requests.put(request)

    def refusal(self) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as raised:
            for _ in self.events:
                pass
        return raised.value

    def close(self) -> None:
        self._requests.put(None)
        self.events.cancel()
        self._channel.close()


@pytest.fixture
def raw_attach(server: ServerProcess) -> Iterator[type[RawAttach]]:
    made: list[RawAttach] = []

    class Tracked(RawAttach):
        def __init__(self, server: ServerProcess, job_id: int) -> None:
            super().__init__(server, job_id)
            made.append(self)

    yield Tracked
    for attach in made:
        attach.close()


@pytest.mark.parametrize(("rows", "columns", "field"), [(0, 80, "rows"), (24, 0, "columns"), (10_001, 80, "rows")])
def test_a_terminal_size_out_of_bounds_is_refused_naming_it(
    server: ServerProcess, client: Client, raw_attach: type[RawAttach], rows: int, columns: int, field: str
) -> None:
    job = client.shell("sleep 60", tty=True)
    try:
        attach = raw_attach(server, job.id)
        attach.send(pb.AttachRequest(resize=pb.TerminalSize(rows=rows, columns=columns)))
        error = attach.refusal()
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"resize.{field}: must be from 1 to 10000, got {rows if field == 'rows' else columns}" in (
            error.details() or ""
        )
    finally:
        job.kill()


def test_resizing_a_job_without_a_terminal_is_refused(
    server: ServerProcess, client: Client, raw_attach: type[RawAttach]
) -> None:
    job = client.shell("sleep 60", interactive=True)
    try:
        attach = raw_attach(server, job.id)
        attach.send(pb.AttachRequest(resize=pb.TerminalSize(rows=24, columns=80)))
        error = attach.refusal()
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"cannot resize job {job.id}: it has no terminal" in (error.details() or "")
        assert job.refresh().status in (JobStatus.QUEUED, JobStatus.PROCESSING), "the job is left running"
    finally:
        job.kill()
    with pytest.raises(InvalidRequest, match="rows must be from 1 to 10000"):  # the SDK says so before sending
        job.attach().resize(0, 80)


def test_resizing_a_tty_job_that_ended_is_ignored(server: ServerProcess, client: Client) -> None:
    job = client.shell("echo over", tty=True)
    assert job.wait(60) is JobStatus.DONE
    with job.attach() as session:
        session.resize(30, 90)
        events = list(session)
    assert isinstance(events[-1], Exit) and events[-1].status is JobStatus.DONE
    assert b"over" in b"".join(e.data for e in events if isinstance(e, Output))


@pytest.mark.timeout(120)
def test_closing_stdin_after_a_line_left_open_ends_the_input(client: Client) -> None:
    """Input piped into a tty job need not end with a newline: closing stdin after `abc`
    still ends the reader's input (the first EOF key hands `abc` over, the second ends it)."""
    job = client.shell("stty -echo; echo ready; wc -c", tty=True)
    with job.attach() as session:
        read_until(session, b"ready")
        session.write(b"abc")
        session.close_stdin()
        for event in session:
            if isinstance(event, Exit):
                break
    assert job.wait(60) is JobStatus.DONE, job.snapshot.reason
    assert job.stdout.split()[-1] == "3", job.stdout
