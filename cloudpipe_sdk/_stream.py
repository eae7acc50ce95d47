"""Live output and input: `Job.stream()`, `Job.logs()` and `Job.attach()`."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._convert import SIGNALS, event_from_pb
from cloudpipe_sdk._errors import InvalidRequest, from_rpc_error
from cloudpipe_sdk._types import Event, Exit, Output, StreamName

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import Transport

SignalName = Literal["TERM", "INT", "KILL"]
MAX_TERMINAL_CELLS = 10_000  # rows or columns of a tty job's terminal, as the server bounds them


class AttachState:
    """What a live connection to a job keeps, sync or asyncio: the offsets received so
    far (a reconnect resumes from them), whether the job ended, and the requests."""

    def __init__(self, job_id: int, stdout_offset: int = 0, stderr_offset: int = 0) -> None:
        self._job_id = job_id
        self.offsets: dict[StreamName, int] = {"stdout": stdout_offset, "stderr": stderr_offset}
        self._ended = False

    def _start(self) -> pb.AttachRequest:
        start = pb.AttachStart(
            id=self._job_id, stdout_offset=self.offsets["stdout"], stderr_offset=self.offsets["stderr"]
        )
        return pb.AttachRequest(start=start)

    def _received(self, message: pb.AttachEvent) -> Event:
        event = event_from_pb(message)
        if isinstance(event, Output):
            self.offsets[event.stream] = event.offset + len(event.data)
        elif isinstance(event, Exit):
            self._ended = True
        return event

    @staticmethod
    def _stdin(data: bytes | str) -> pb.AttachRequest:
        return pb.AttachRequest(stdin=data.encode() if isinstance(data, str) else data)

    @staticmethod
    def _signal(name: SignalName) -> pb.AttachRequest:
        try:
            return pb.AttachRequest(signal=SIGNALS[name])
        except KeyError:
            raise InvalidRequest(f"signal: {name!r} is not one of {', '.join(SIGNALS)}") from None

    @staticmethod
    def _resize(rows: int, columns: int) -> pb.AttachRequest:
        for name, value in (("rows", rows), ("columns", columns)):
            if not 1 <= value <= MAX_TERMINAL_CELLS:
                raise InvalidRequest(f"resize: {name} must be from 1 to {MAX_TERMINAL_CELLS}, got {value}")
        return pb.AttachRequest(resize=pb.TerminalSize(rows=rows, columns=columns))

    _CLOSE_STDIN = pb.AttachRequest(close_stdin=True)


class Attachment(AttachState):
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

    def __init__(self, transport: Transport, job_id: int, stdout_offset: int = 0, stderr_offset: int = 0) -> None:
        super().__init__(job_id, stdout_offset, stderr_offset)
        self._transport = transport
        # one queue per connection: a dead connection's request thread stays blocked in
        # get() on its own queue, so it cannot swallow what is written after a reconnect
        self._outbox: queue.Queue[pb.AttachRequest | None] = queue.Queue()
        self._lock = threading.Lock()
        self._call: grpc.Future | None = None

    # -- input ------------------------------------------------------------------------

    def write(self, data: bytes | str) -> None:
        """Send bytes to the job's stdin (the job must be interactive and running)."""
        self._send(self._stdin(data))

    def close_stdin(self) -> None:
        self._send(self._CLOSE_STDIN)

    def signal(self, name: SignalName) -> None:
        """TERM or INT reach the job's processes; KILL kills the job (it ends killed)."""
        self._send(self._signal(name))

    def resize(self, rows: int, columns: int) -> None:
        """Set the terminal size of a job submitted with `tty=True` (each 1 to 10000).
        Sent before the job runs, it applies once it starts; after it ended, it is
        ignored. A job without a terminal refuses it (the iteration raises
        InvalidRequest)."""
        self._send(self._resize(rows, columns))

    def _send(self, request: pb.AttachRequest) -> None:
        with self._lock:
            self._outbox.put(request)

    # -- output -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Event]:
        outage = self._transport.outage(f"job {self._job_id}")
        while not self._ended:
            dead = threading.Event()
            outage.opened()
            try:
                for message in self._connect(dead):
                    outage.progress()
                    yield self._received(message)
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
        start = self._start()

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

        call = self._transport.attach(requests())
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
