"""`AsyncJob` and `AsyncAttachment`: `Job` and `Attachment` for asyncio, on an
`AsyncTransport`. State, results and the attach bookkeeping are the sync ones'
(`cloudpipe_sdk._outcome`, `cloudpipe_sdk._stream.AttachState`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._aio_waiting import as_completed
from cloudpipe_sdk._errors import from_rpc_error
from cloudpipe_sdk._job_calls import get_job, kill_job
from cloudpipe_sdk._outcome import job_exception, outcome
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._stream import AttachState, SignalName
from cloudpipe_sdk._types import Event, JobSnapshot, Output

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import AsyncTransport


class AsyncJob:
    """A submitted job, for asyncio. `snapshot` is the state last fetched (None before
    the first fetch); `await job.refresh()` fetches it.

    Example::

        job = await client.shell("echo hi")
        await job.result()             # b"hi\\n"
        (await job.refresh()).status   # JobStatus.DONE
    """

    def __init__(self, transport: AsyncTransport, job_id: int, snapshot: JobSnapshot | None = None) -> None:
        self.transport = transport
        self.id = job_id
        self._snapshot = snapshot

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id} {self._snapshot.status.value if self._snapshot is not None else '?'}>"

    @property
    def snapshot(self) -> JobSnapshot | None:
        return self._snapshot

    async def refresh(self) -> JobSnapshot:
        self._snapshot = await self.transport.call(get_job(self.id))
        return self._snapshot

    def done(self) -> bool:
        """Whether the state last fetched is final (no call is made)."""
        return self._snapshot is not None and self._snapshot.status.finished

    async def status(self) -> JobStatus:
        return (await self.refresh()).status

    async def wait(self, timeout: float | None = None) -> JobStatus:
        """Wait until the job finishes; its final status. Timeout after `timeout` s."""
        if not self.done():
            async for _ in as_completed(self.transport, [self], timeout=timeout):
                pass
        assert self._snapshot is not None
        return self._snapshot.status

    async def result(self, timeout: float | None = None) -> Any:
        """As `Job.result`: the value (bytes for shell jobs), or raise."""
        await self.wait(timeout)
        assert self._snapshot is not None
        return outcome(self._snapshot)

    async def exception(self, timeout: float | None = None) -> BaseException | None:
        """As `Job.exception`: the job's own failure, or None; errors of waiting (and
        cancellation) are raised."""
        await self.wait(timeout)
        assert self._snapshot is not None
        return job_exception(self._snapshot)

    async def kill(self) -> None:
        self._snapshot = await self.transport.call(kill_job(self.id))

    async def stream(self, *, stdout_offset: int = 0, stderr_offset: int = 0) -> AsyncIterator[Event]:
        """Output chunks, status changes and a final Exit, as they happen (reconnecting
        from the offsets received so far when the connection drops).

        Example::

            async for event in job.stream():
                if isinstance(event, Output):
                    print(event.text, end="")
        """
        async with AsyncAttachment(self.transport, self.id, stdout_offset, stderr_offset) as attachment:
            async for event in attachment:
                yield event

    async def logs(self, *, follow: bool = False) -> AsyncIterator[str]:
        """As `Job.logs`: the output so far, or with `follow=True` until the job ends."""
        if not follow:
            snapshot = await self.refresh()
            for data in (snapshot.stdout, snapshot.stderr):
                if data:
                    yield data.decode("utf-8", "replace")
            return
        async for event in self.stream():
            if isinstance(event, Output):
                yield event.text

    async def attach(self, *, stdin: bytes | str | None = None) -> AsyncAttachment:
        """As `Job.attach`: a live connection to type into the job and read its events.

        Example::

            job = await client.shell("cat", interactive=True)
            async with await job.attach() as session:
                await session.write("hello\\n")
                await session.close_stdin()
                print([e async for e in session])
        """
        attachment = AsyncAttachment(self.transport, self.id)
        if stdin is not None:
            await attachment.write(stdin)
            await attachment.close_stdin()
        return attachment


class AsyncAttachment(AttachState):
    """`Attachment` for asyncio: `async for` its events; `await write(...)`,
    `close_stdin()`, `signal(...)`. What is written while the connection is down goes
    out on the next one."""

    def __init__(self, transport: AsyncTransport, job_id: int, stdout_offset: int = 0, stderr_offset: int = 0) -> None:
        super().__init__(job_id, stdout_offset, stderr_offset)
        self._transport = transport
        self._backlog: list[pb.AttachRequest] = []
        self._lock = asyncio.Lock()  # one write at a time on a call
        self._call: Any = None

    async def write(self, data: bytes | str) -> None:
        """Send bytes to the job's stdin (the job must be interactive and running)."""
        await self._send(self._stdin(data))

    async def close_stdin(self) -> None:
        await self._send(self._CLOSE_STDIN)

    async def signal(self, name: SignalName) -> None:
        """TERM or INT reach the job's processes; KILL kills the job (it ends killed)."""
        await self._send(self._signal(name))

    async def resize(self, rows: int, columns: int) -> None:
        """As `Attachment.resize`: the terminal size of a `tty=True` job."""
        await self._send(self._resize(rows, columns))

    async def _send(self, request: pb.AttachRequest) -> None:
        async with self._lock:
            self._backlog.append(request)
            if self._call is not None:
                await self._flush(self._call)

    async def _flush(self, call: Any) -> None:
        while self._backlog:
            try:
                await call.write(self._backlog[0])
            except (grpc.RpcError, asyncio.InvalidStateError):
                return  # the connection is gone: the next one sends the rest
            self._backlog.pop(0)

    async def __aiter__(self) -> AsyncIterator[Event]:
        outage = self._transport.outage(f"job {self._job_id}")
        while not self._ended:
            outage.opened()
            call = self._transport.attach()
            try:
                async with self._lock:
                    await call.write(self._start())
                    await self._flush(call)
                    self._call = call
                async for message in call:
                    outage.progress()
                    yield self._received(message)
                    if self._ended:
                        return
            except grpc.RpcError as exc:
                if self._ended:
                    return
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(exc) from None
            finally:
                self._call = None
                call.cancel()
            await asyncio.sleep(outage.delay())

    async def close(self) -> None:
        """Stop watching (the job keeps running)."""
        self._ended = True
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> AsyncAttachment:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
