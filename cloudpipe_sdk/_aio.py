"""`AsyncClient` and `AsyncJob`: the SDK for asyncio, on grpc.aio, with the surface of
`Client` and `Job` (`await client.submit(...)`, `await job.result()`, `async for` over
a job's output, over `client.map(...)` and over `client.as_completed(...)`).

Example::

    import asyncio
    from cloudpipe_sdk import AsyncClient

    async def main() -> None:
        async with AsyncClient() as client:
            job = await client.submit(pow, 2, 10)
            print(await job.result(timeout=60))                   # 1024
            async for value in client.map(abs, [-1, -2]):
                print(value)                                      # 1, then 2
            jobs = [await client.shell(f"sleep {n}; echo {n}") for n in (2, 1)]
            async for done in client.as_completed(jobs):
                print(await done.result())                        # b"1\\n", then b"2\\n"

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import builtins
import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION
from typing import Any, NamedTuple, TypeVar

import grpc
from grpc import aio

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk._client import _STATUS_TO_PB, MAX_MESSAGE_BYTES, _batches, metadata_for
from cloudpipe_sdk._config import resolve_config
from cloudpipe_sdk._errors import CloudpipeError, InvalidRequest, Timeout, Unavailable, from_rpc_error
from cloudpipe_sdk._mapping import _columns
from cloudpipe_sdk._options import JobOptions, qualname
from cloudpipe_sdk._outcome import job_exception, outcome
from cloudpipe_sdk._retry import Outage, async_retrying
from cloudpipe_sdk._serialize import check_serializer
from cloudpipe_sdk._status import JobStatus, status_from_pb
from cloudpipe_sdk._stream import Event, Exit, Output, _event
from cloudpipe_sdk._waiting import FETCH_BATCH, WATCH_LIMIT

R = TypeVar("R")


class AsyncDoneAndNotDone(NamedTuple):
    done: set[AsyncJob]
    not_done: set[AsyncJob]


class AsyncJob:
    """A submitted job, for asyncio. `snapshot` is the state last fetched (None before
    the first fetch); `await job.refresh()` fetches it.

    Example::

        job = await client.shell("echo hi")
        await job.result()             # b"hi\\n"
        (await job.refresh()).status   # JOB_STATUS_DONE
    """

    def __init__(self, client: AsyncClient, job_id: int, snapshot: pb.Job | None = None) -> None:
        self._client = client
        self.id = job_id
        self.snapshot = snapshot

    def __repr__(self) -> str:
        status = status_from_pb(self.snapshot.status).value if self.snapshot is not None else "?"
        return f"<AsyncJob {self.id} {status}>"

    async def refresh(self) -> pb.Job:
        self.snapshot = await self._client._call(self._client._stub.Get, pb.GetJobRequest(id=self.id))
        return self.snapshot

    def done(self) -> bool:
        """Whether the state last fetched is final (no call is made)."""
        return self.snapshot is not None and status_from_pb(self.snapshot.status).finished

    async def status(self) -> JobStatus:
        return status_from_pb((await self.refresh()).status)

    async def wait(self, timeout: float | None = None) -> JobStatus:
        """Wait until the job finishes; its final status. Timeout after `timeout` s."""
        if not self.done():
            async for _ in self._client.as_completed([self], timeout=timeout):
                pass
        assert self.snapshot is not None
        return status_from_pb(self.snapshot.status)

    async def result(self, timeout: float | None = None) -> Any:
        """As `Job.result`: the value (bytes for shell jobs), or raise."""
        await self.wait(timeout)
        assert self.snapshot is not None
        return outcome(self.snapshot)

    async def exception(self, timeout: float | None = None) -> BaseException | None:
        """As `Job.exception`: the job's own failure, or None; errors of waiting (and
        cancellation) are raised."""
        await self.wait(timeout)
        assert self.snapshot is not None
        return job_exception(self.snapshot)

    async def kill(self) -> None:
        self.snapshot = await self._client._call(self._client._stub.Kill, pb.KillJobRequest(id=self.id))

    async def stream(self, *, stdout_offset: int = 0, stderr_offset: int = 0) -> AsyncIterator[Event]:
        """Output chunks, status changes and a final Exit, as they happen (reconnecting
        from the offsets received so far when the connection drops).

        Example::

            async for event in job.stream():
                if isinstance(event, Output):
                    print(event.text, end="")
        """
        offsets = {"stdout": stdout_offset, "stderr": stderr_offset}
        outage = Outage(self._client._retry_for, f"job {self.id}")
        while True:
            start = pb.AttachStart(id=self.id, stdout_offset=offsets["stdout"], stderr_offset=offsets["stderr"])
            outage.opened()
            call = self._client._stub.Attach(metadata=self._client._metadata)
            try:
                await call.write(pb.AttachRequest(start=start))
                async for message in call:
                    outage.progress()
                    event = _event(message)
                    if isinstance(event, Output):
                        offsets[event.stream] = event.offset + len(event.data)
                    yield event
                    if isinstance(event, Exit):
                        return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(exc) from None
            finally:
                call.cancel()
            await asyncio.sleep(outage.delay())

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


class AsyncClient:
    """A connection to a Cloudpipe server for asyncio code; settings as for `Client`.
    Use it as an async context manager (or `await client.close()`).

    Example::

        async with AsyncClient("localhost:50051", api_key="...") as client:
            jobs = [await client.submit(pow, 2, n) for n in range(3)]
            print([await job.result() for job in jobs])     # [1, 2, 4]
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        account: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        serializer: str | None = None,
        rpc_timeout: float | None = None,
        retry_for: float | None = None,
        channel: aio.Channel | None = None,
    ) -> None:
        self.config = resolve_config(
            profile=profile,
            address=address,
            api_key=api_key,
            account=account,
            tls_ca=tls_ca,
            serializer=serializer,
            rpc_timeout=rpc_timeout,
            retry_for=retry_for,
        )
        self.address = self.config.address
        self._serializer = check_serializer(self.config.serializer)
        self._metadata = metadata_for(self.config)
        self._timeout = self.config.rpc_timeout
        self._retry_for = self.config.retry_for
        self._owns_channel = channel is None
        # grpc.aio channels belong to the event loop they are made in: ours is opened on
        # first use (or __aenter__), inside the loop; views share the holder
        self._connection = _Connection(channel)
        self._options = JobOptions()

    @property
    def _stub(self) -> Any:
        return self._connection.stub(self.config.address, self.config.tls_ca)

    async def close(self) -> None:
        if self._owns_channel and self._connection.channel is not None:
            await self._connection.channel.close()

    async def __aenter__(self) -> AsyncClient:
        self._stub  # noqa: B018 - opens the channel in this loop
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def with_options(self, **options: Any) -> AsyncClient:
        """A view (same connection) whose jobs use these `JobOptions`."""
        view = object.__new__(AsyncClient)
        view.__dict__.update(self.__dict__)
        view._owns_channel = False
        view._options = self._options.merged(**options)
        if view._options.serializer:
            view._serializer = view._options.serializer
        return view

    # -- submitting ------------------------------------------------------------------------

    async def shell(
        self,
        cmd: str,
        *,
        stdin: bytes | str | None = None,
        result_source: str = "stdout",
        interactive: bool = False,
        depends_on: Sequence[AsyncJob | int] = (),
        idempotency_key: str | None = None,
        **options: Any,
    ) -> AsyncJob:
        """As `Client.shell`."""
        spec = self._options.merged(**options).shell_spec(cmd, stdin=stdin, result_source=result_source)
        spec.interactive = interactive
        spec.depends_on.extend(dep.id if isinstance(dep, AsyncJob) else dep for dep in depends_on)
        return (await self._submit_specs([spec], idempotency_key))[0]

    async def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> AsyncJob:
        """As `Client.submit`."""
        spec = self._options.function_spec(fn, args, kwargs, serializer=self._serializer)
        return (await self._submit_specs([spec]))[0]

    async def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        chunksize: int | None = None,
        timeout: float | None = None,
        return_exceptions: bool = False,
        **options: Any,
    ) -> AsyncIterator[R]:
        """As `Client.map`, as an async iterator (jobs are submitted when iteration starts).

        Example::

            results = [r async for r in client.map(pow, [2, 3], [2, 2])]   # [4, 9]
        """
        calls = builtins.list(zip(*iterables, strict=False))
        async for value in self._map(fn, calls, chunksize, timeout, return_exceptions, options):
            yield value

    async def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        *,
        chunksize: int | None = None,
        timeout: float | None = None,
        return_exceptions: bool = False,
        **options: Any,
    ) -> AsyncIterator[R]:
        """As `Client.starmap`, as an async iterator."""
        calls = [tuple(args) for args in iterable]
        async for value in self._map(fn, calls, chunksize, timeout, return_exceptions, options):
            yield value

    async def _map(
        self,
        fn: Callable[..., Any],
        calls: builtins.list[tuple[Any, ...]],
        chunksize: int | None,
        timeout: float | None,
        return_exceptions: bool,
        options: dict[str, Any],
    ) -> AsyncIterator[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        size = chunksize or 1
        if size < 1:
            raise InvalidRequest(f"chunksize: must be at least 1, got {chunksize}")
        job_options = self._options.merged(**options)
        chunks = [calls[start : start + size] for start in range(0, len(calls), size)]
        specs = []
        for chunk in chunks:
            if size == 1:
                specs.append(job_options.function_spec(fn, chunk[0], {}, serializer=self._serializer))
            else:
                spec = job_options.function_spec(list, (map(fn, *_columns(chunk)),), {}, serializer=self._serializer)
                spec.tags["function"] = qualname(fn)
                specs.append(spec)
        jobs = await self._submit_specs(specs)
        finished: set[int] = set()
        completed = False
        try:
            async with _Watch(self, [job.id for job in jobs], timeout) as watch:
                for index, job in enumerate(jobs):
                    while job.id not in finished:
                        finished.update(event.id for event in await watch.next(deadline, len(jobs) - len(finished)))
                    if job.snapshot is None:
                        ahead = [
                            j for j in jobs[index : index + FETCH_BATCH] if j.id in finished and j.snapshot is None
                        ]
                        await self._fetch(ahead)
                    assert job.snapshot is not None
                    try:
                        value = outcome(job.snapshot)
                    except Exception as exc:
                        if not return_exceptions:
                            raise
                        values: builtins.list[Any] = [exc] * len(chunks[index])
                    else:
                        values = builtins.list(value) if size > 1 else [value]
                    job.snapshot = None
                    for item in values:
                        yield item
            completed = True
        finally:
            if not completed:  # best effort, as in Client.map: one try each, none once unavailable
                for job in jobs:
                    if job.id not in finished:
                        try:
                            await self._call(self._stub.Kill, pb.KillJobRequest(id=job.id), retry=False)
                        except Unavailable:
                            break
                        except CloudpipeError:
                            pass

    # -- waiting -----------------------------------------------------------------------------

    async def as_completed(self, jobs: Iterable[AsyncJob], timeout: float | None = None) -> AsyncGenerator[AsyncJob]:
        """Yield the jobs (of this client) as they finish, with their final state fetched.
        Raises Timeout after `timeout` seconds.

        Example::

            async for job in client.as_completed(jobs, timeout=600):
                print(job.id, await job.result())
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        unique = builtins.list(dict.fromkeys(jobs))
        for job in unique:
            if job.done():
                yield job
        pending: dict[int, builtins.list[AsyncJob]] = {}
        for job in unique:
            if not job.done():
                pending.setdefault(job.id, []).append(job)
        if not pending:
            return
        async with _Watch(self, builtins.list(pending), timeout) as watch:
            left = len(pending)
            while left:
                events = await watch.next(deadline, left)
                ready = [job for event in events for job in pending.get(event.id, [])]
                left -= len(events)
                await self._fetch(ready)
                for job in ready:
                    yield job

    async def wait(
        self, jobs: Iterable[AsyncJob], timeout: float | None = None, return_when: str = ALL_COMPLETED
    ) -> AsyncDoneAndNotDone:
        """As `cloudpipe_sdk.wait`, for asyncio."""
        if return_when not in (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION):
            raise InvalidRequest(f"return_when: {return_when!r} is not a concurrent.futures constant")
        unique = set(jobs)
        done: set[AsyncJob] = set()
        iterator = self.as_completed(unique, timeout)
        try:
            async for job in iterator:
                done.add(job)
                if return_when == FIRST_COMPLETED:
                    break
                if return_when == FIRST_EXCEPTION and job.snapshot and job.snapshot.status != pb.JOB_STATUS_DONE:
                    break
        except Timeout:
            pass
        finally:
            await iterator.aclose()
        return AsyncDoneAndNotDone(done, unique - done)

    # -- reading -----------------------------------------------------------------------------

    async def get(self, job_id: int) -> AsyncJob:
        return AsyncJob(self, job_id, await self._call(self._stub.Get, pb.GetJobRequest(id=job_id)))

    async def list(
        self,
        *,
        ids: Sequence[int] = (),
        names: Sequence[str] = (),
        statuses: Sequence[JobStatus | str] = (),
        limit: int = 100,
        newest_first: bool = True,
    ) -> builtins.list[AsyncJob]:
        request = pb.ListJobsRequest(
            ids=builtins.list(ids),
            names=builtins.list(names),
            statuses=[_STATUS_TO_PB[JobStatus(s)] for s in statuses],
            limit=limit,
            newest_first=newest_first,
        )
        response = await self._call(self._stub.List, request)
        return [AsyncJob(self, job.id, job) for job in response.jobs]

    async def kill(self, job_id: int) -> AsyncJob:
        return AsyncJob(self, job_id, await self._call(self._stub.Kill, pb.KillJobRequest(id=job_id)))

    async def kill_all(self) -> builtins.list[int]:
        return builtins.list((await self._call(self._stub.KillAll, pb.KillAllRequest())).ids)

    async def queue_stats(self) -> dict[str, int]:
        return dict((await self._call(self._stub.QueueStats, pb.QueueStatsRequest())).counts)

    # -- plumbing ----------------------------------------------------------------------------

    async def _submit_specs(
        self, specs: Sequence[pb.JobSpec], idempotency_key: str | None = None
    ) -> builtins.list[AsyncJob]:
        base = idempotency_key or uuid.uuid4().hex
        for index, spec in enumerate(specs):
            if not spec.idempotency_key:
                spec.idempotency_key = base if len(specs) == 1 else f"{base}-{index}"
        ids: builtins.list[int] = []
        for batch in _batches(specs):
            response = await self._call(self._stub.Submit, pb.SubmitRequest(jobs=batch))
            ids.extend(response.ids)
        return [AsyncJob(self, job_id) for job_id in ids]

    async def _fetch(self, jobs: Sequence[AsyncJob]) -> None:
        by_id: dict[int, builtins.list[AsyncJob]] = {}
        for job in jobs:
            by_id.setdefault(job.id, []).append(job)
        ids = builtins.list(by_id)
        for start in range(0, len(ids), FETCH_BATCH):
            request = pb.ListJobsRequest(ids=ids[start : start + FETCH_BATCH], limit=FETCH_BATCH)
            for snapshot in (await self._call(self._stub.List, request)).jobs:
                for job in by_id[snapshot.id]:
                    job.snapshot = snapshot

    async def _call(self, method: Any, request: Any, *, retry: bool = True) -> Any:
        """A unary call with a deadline, retried while UNAVAILABLE (see `Client._call`)."""
        try:
            async for attempt in async_retrying(self._retry_for, retry=retry):
                with attempt:
                    return await method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        raise AssertionError("unreachable")


class _Watch:
    """Terminal events of jobs from WatchMany streams (one task per WATCH_LIMIT ids)."""

    def __init__(self, client: AsyncClient, ids: Sequence[int], timeout: float | None) -> None:
        self._client = client
        self._ids = builtins.list(dict.fromkeys(ids))
        self._timeout = timeout
        self._queue: asyncio.Queue[pb.JobStatusEvent | CloudpipeError] = asyncio.Queue()
        self._tasks: builtins.list[asyncio.Task[None]] = []

    async def __aenter__(self) -> _Watch:
        for start in range(0, len(self._ids), WATCH_LIMIT):
            self._tasks.append(asyncio.create_task(self._pump(self._ids[start : start + WATCH_LIMIT])))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pump(self, ids: builtins.list[int]) -> None:
        pending = set(ids)
        outage = Outage(self._client._retry_for, f"watching jobs at {self._client.address}")
        while pending:
            outage.opened()
            call = self._client._stub.WatchMany(
                pb.WatchManyRequest(ids=sorted(pending)), timeout=self._timeout, metadata=self._client._metadata
            )
            try:
                async for event in call:
                    outage.progress()
                    if event.id in pending:
                        pending.discard(event.id)
                        await self._queue.put(event)
                return
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    await self._queue.put(from_rpc_error(exc))
                    return
            try:
                delay = outage.delay()
            except Unavailable as exc:
                await self._queue.put(exc)
                return
            await asyncio.sleep(delay)

    async def next(self, deadline: float | None, left: int) -> builtins.list[pb.JobStatusEvent]:
        """The next event and any others already queued; Timeout at the deadline."""
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            items = [await asyncio.wait_for(self._queue.get(), remaining)]
        except TimeoutError:
            raise Timeout(f"{left} job(s) did not finish in time") from None
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        events = []
        for item in items:
            if isinstance(item, CloudpipeError):
                raise item
            events.append(item)
        return events


class _Connection:
    """The channel and stub of an AsyncClient and its views, made on first use."""

    def __init__(self, channel: aio.Channel | None) -> None:
        self.channel = channel
        self._stub: Any = None

    def stub(self, address: str, tls_ca: str) -> Any:
        if self._stub is None:
            if self.channel is None:
                self.channel = _open_channel(address, tls_ca)
            self._stub = pb_grpc.JobServiceStub(self.channel)  # type: ignore[no-untyped-call]
        return self._stub


def _open_channel(address: str, tls_ca: str) -> aio.Channel:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if tls_ca:
        with open(tls_ca, "rb") as handle:
            credentials = grpc.ssl_channel_credentials(root_certificates=handle.read())
        return aio.secure_channel(address, credentials, options=options)
    return aio.insecure_channel(address, options=options)
