"""Live output and input: `Job.stream()`, `Job.logs()` and `Job.attach()`."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._errors import from_rpc_error
from cloudpipe_sdk._retry import Outage
from cloudpipe_sdk._status import JobStatus, status_from_pb

if TYPE_CHECKING:
    from cloudpipe_sdk._client import Client

StreamName = Literal["stdout", "stderr"]
SignalName = Literal["TERM", "INT", "KILL"]
_STREAMS: dict[int, StreamName] = {pb.OUTPUT_STREAM_STDOUT: "stdout", pb.OUTPUT_STREAM_STDERR: "stderr"}
_SIGNALS = {"TERM": pb.SIGNAL_TERM, "INT": pb.SIGNAL_INT, "KILL": pb.SIGNAL_KILL}


@dataclass(frozen=True)
class Output:
    """Bytes the job wrote to `stream`, starting `offset` bytes into it."""

    stream: StreamName
    offset: int
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True)
class StatusChange:
    status: JobStatus
    reason: str


@dataclass(frozen=True)
class Exit:
    """The job ended; always the last event of a stream."""

    status: JobStatus
    return_code: int | None
    reason: str


Event = Output | StatusChange | Exit


class Attachment:
    """A live connection to a job: iterate it for events; write to its stdin; signal it.

    Output already received is never sent twice: if the connection drops, iterating
    reconnects and resumes from the offsets it has.

    Example::

        with job.attach() as session:
            session.write(b"2 + 2\\n")
            session.close_stdin()
            for event in session:
                if isinstance(event, Output):
                    print(event.text, end="")
    """

    def __init__(self, client: Client, job_id: int, stdout_offset: int = 0, stderr_offset: int = 0) -> None:
        self._client = client
        self._job_id = job_id
        self.offsets: dict[StreamName, int] = {"stdout": stdout_offset, "stderr": stderr_offset}
        # one queue per connection: a dead connection's request thread stays blocked in
        # get() on its own queue, so it cannot swallow what is written after a reconnect
        self._outbox: queue.Queue[pb.AttachRequest | None] = queue.Queue()
        self._lock = threading.Lock()
        self._call: grpc.Future | None = None
        self._ended = False

    # -- input ------------------------------------------------------------------------

    def write(self, data: bytes | str) -> None:
        """Send bytes to the job's stdin (the job must be interactive and running)."""
        self._send(pb.AttachRequest(stdin=data.encode() if isinstance(data, str) else data))

    def close_stdin(self) -> None:
        self._send(pb.AttachRequest(close_stdin=True))

    def signal(self, name: SignalName) -> None:
        """TERM or INT reach the job's processes; KILL kills the job (it ends killed)."""
        self._send(pb.AttachRequest(signal=_SIGNALS[name]))

    def _send(self, request: pb.AttachRequest) -> None:
        with self._lock:
            self._outbox.put(request)

    # -- output -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        outage = Outage(self._client._retry_for, f"job {self._job_id}")
        while not self._ended:
            dead = threading.Event()
            outage.opened()
            try:
                for message in self._connect(dead):
                    outage.progress()
                    event = _event(message)
                    if isinstance(event, Output):
                        self.offsets[event.stream] = event.offset + len(event.data)
                    elif isinstance(event, Exit):
                        self._ended = True
                    yield event
            except grpc.RpcError as exc:
                if self._ended:  # closed by us
                    return
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(exc) from None
            finally:
                dead.set()
            if self._ended:
                return
            # the server went away (restart, shutdown): reconnect from our offsets
            time.sleep(outage.delay())

    def _connect(self, dead: threading.Event) -> Iterator[pb.AttachEvent]:
        start = pb.AttachRequest(
            start=pb.AttachStart(
                id=self._job_id, stdout_offset=self.offsets["stdout"], stderr_offset=self.offsets["stderr"]
            )
        )

        outbox: queue.Queue[pb.AttachRequest | None] = queue.Queue()
        with self._lock:
            # what the previous connection did not send yet goes out on this one
            old = self._outbox
            while True:
                try:
                    outbox.put(old.get_nowait())
                except queue.Empty:
                    break
            old.put(None)
            self._outbox = outbox
            if self._ended:
                outbox.put(None)

        def requests() -> Iterator[pb.AttachRequest]:
            yield start
            while (request := outbox.get()) is not None:
                with self._lock:
                    if dead.is_set():
                        # taken off the queue after the connection died: keep it for the next one
                        with self._outbox.mutex:
                            self._outbox.queue.appendleft(request)
                            self._outbox.not_empty.notify()
                        return
                yield request

        call = self._client._stub.Attach(requests(), metadata=self._client._metadata)
        with self._lock:
            self._call = call
        return call  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop watching (the job keeps running)."""
        with self._lock:
            self._ended = True
            self._outbox.put(None)  # earlier connections' queues got theirs on reconnect
            if self._call is not None:
                self._call.cancel()

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _event(message: pb.AttachEvent) -> Event:
    kind = message.WhichOneof("event")
    if kind == "output":
        return Output(_STREAMS[message.output.stream], message.output.offset, message.output.data)
    if kind == "status":
        return StatusChange(status_from_pb(message.status.status), message.status.reason)
    if kind == "exit":
        exit_event = message.exit
        code = exit_event.return_code if exit_event.HasField("return_code") else None
        return Exit(status_from_pb(exit_event.status), code, exit_event.reason)
    raise ValueError(f"unknown attach event {kind!r}: upgrade the SDK")
