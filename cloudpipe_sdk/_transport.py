"""The connection under both clients: `Transport` (grpc) and `AsyncTransport`
(grpc.aio). Each holds the channel and its stubs, the credentials sent as metadata,
the deadline of unary calls and the one retry/reconnect policy (`cloudpipe_sdk._retry`);
every helper (`Job`, watchers, map, accessors of saved jobs and schedules) takes one.
Errors leave as the SDK's (`from_rpc_error`).

    Client / AsyncClient      configuration, spec building (cloudpipe_sdk._base)
        -> helpers            Job, Attachment, Watcher, map, SavedJobs, Schedules, Volumes, Secrets...
            -> transport      this module: I/O only
                -> _rpc       calls described as data (_job_calls, _schedule_calls, _volume_calls, _secret_calls)

Example::

    transport = Transport(resolve_config())
    snapshot = transport.call(get_job(7))
    transport.close()
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Generator, Iterable, Iterator
from typing import Any, TypeVar

import grpc
from grpc import aio

from cloudpipe_proto.v1 import images_pb2 as images_pb
from cloudpipe_proto.v1 import images_pb2_grpc as images_grpc
from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as jobs_grpc
from cloudpipe_proto.v1 import quotas_pb2_grpc as quotas_grpc
from cloudpipe_proto.v1 import schedules_pb2_grpc as schedules_grpc
from cloudpipe_proto.v1 import secrets_pb2_grpc as secrets_grpc
from cloudpipe_proto.v1 import volumes_pb2 as volumes_pb
from cloudpipe_proto.v1 import volumes_pb2_grpc as volumes_grpc
from cloudpipe_sdk._channel import open_aio_channel, open_channel
from cloudpipe_sdk._config import ClientConfig
from cloudpipe_sdk._errors import CloudpipeError, from_rpc_error
from cloudpipe_sdk._job_calls import wait_request, watch_request
from cloudpipe_sdk._retry import Outage, async_retrying, gave_up, retrying, unavailable
from cloudpipe_sdk._rpc import Done, Plan, Rpc, Service, advance
from cloudpipe_sdk._uploading import send_upload

T = TypeVar("T")


def metadata_for(config: ClientConfig) -> tuple[tuple[str, str], ...]:
    """The credentials every call carries."""
    metadata: tuple[tuple[str, str], ...] = ()
    if config.api_key:
        metadata += (("authorization", f"Bearer {config.api_key}"),)
    if config.account:
        metadata += (("x-cloudpipe-account", config.account),)
    return metadata


def _stubs(channel: Any) -> dict[Service, Any]:
    return {
        "jobs": jobs_grpc.JobServiceStub(channel),  # type: ignore[no-untyped-call]
        "saved_jobs": schedules_grpc.SavedJobServiceStub(channel),  # type: ignore[no-untyped-call]
        "schedules": schedules_grpc.ScheduleServiceStub(channel),  # type: ignore[no-untyped-call]
        "images": images_grpc.ImageServiceStub(channel),  # type: ignore[no-untyped-call]
        "volumes": volumes_grpc.VolumeServiceStub(channel),  # type: ignore[no-untyped-call]
        "secrets": secrets_grpc.SecretServiceStub(channel),  # type: ignore[no-untyped-call]
        "quotas": quotas_grpc.QuotaServiceStub(channel),  # type: ignore[no-untyped-call]
    }


class _Settings:
    """What both transports know of the connection."""

    def __init__(self, config: ClientConfig) -> None:
        self.address = config.address
        self.tls_ca = config.tls_ca
        self.rpc_timeout = config.rpc_timeout
        self.retry_for = config.retry_for
        self.metadata = metadata_for(config)

    def outage(self, what: str) -> Outage:
        """The reconnection policy of one stream (see `cloudpipe_sdk._retry`)."""
        return Outage(self.retry_for, what, self.address)

    def _method(self, stubs: dict[Service, Any], rpc: Rpc[Any]) -> Any:
        return getattr(stubs[rpc.service], rpc.method)


class Transport(_Settings):
    """The synchronous connection. `channel` replaces the one it would open (tests,
    interceptors); it does not close a channel it was given."""

    def __init__(self, config: ClientConfig, channel: grpc.Channel | None = None) -> None:
        super().__init__(config)
        self._owns_channel = channel is None
        self.channel = channel if channel is not None else open_channel(config.address, config.tls_ca)
        self._stubs = _stubs(self.channel)

    def stub(self, service: Service) -> Any:
        return self._stubs[service]

    def call(self, rpc: Rpc[T]) -> T:
        """One unary call with the deadline, retried with backoff while the server is
        UNAVAILABLE (unless `rpc.retry` is false)."""
        method = self._method(self._stubs, rpc)
        try:
            for attempt in retrying(self.retry_for, retry=rpc.retry, target=self.address):
                with attempt:
                    response = method(rpc.request, timeout=self.rpc_timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            if rpc.retry and unavailable(exc):
                raise gave_up(exc, self.address, self.retry_for) from None
            raise from_rpc_error(exc) from None
        return rpc.parse(response)

    def run(self, plan: Plan[T]) -> T:
        """Make the calls of a plan, one after the other; what it returns."""
        step = advance(plan, None, None)
        while not isinstance(step, Done):
            step = self._step(plan, step)
        return step.value

    def _step(self, plan: Plan[T], rpc: Rpc[Any]) -> Rpc[Any] | Done[T]:
        try:
            answer = self.call(rpc)
        except CloudpipeError as exc:
            return advance(plan, None, exc)
        return advance(plan, answer, None)

    def wait_events(self, job_id: int, timeout: float | None) -> Iterator[pb.JobStatusEvent]:
        """The Wait stream of one job (raises grpc.RpcError; callers reconnect)."""
        return self._stubs["jobs"].Wait(wait_request(job_id), timeout=timeout, metadata=self.metadata)  # type: ignore[no-any-return]

    def watch(self, ids: Iterable[int], timeout: float | None = None) -> Any:
        """A WatchMany stream (a grpc call: iterate it, `cancel()` it)."""
        return self._stubs["jobs"].WatchMany(watch_request(list(ids)), timeout=timeout, metadata=self.metadata)

    def build_image(self, request: images_pb.BuildImageRequest) -> Iterator[images_pb.BuildEvent]:
        """The Build stream of an image (no deadline: the server bounds a build's time);
        errors leave as the SDK's."""
        try:
            yield from self._stubs["images"].Build(request, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def upload(self, requests: Callable[[], Iterable[volumes_pb.UploadRequest]]) -> volumes_pb.FileEntry:
        """One Upload stream, its messages made by `requests()`; made again and sent
        again while the server is UNAVAILABLE (the retry policy of unary calls: an
        upload lands whole or not at all, so sending the same file twice is safe). No
        deadline: a large file takes its time."""
        stub = self._stubs["volumes"]
        try:
            for attempt in retrying(self.retry_for, target=self.address):
                with attempt:
                    entry = stub.Upload(iter(requests()), metadata=self.metadata)
        except grpc.RpcError as exc:
            if unavailable(exc):
                raise gave_up(exc, self.address, self.retry_for) from None
            raise from_rpc_error(exc) from None
        return entry  # type: ignore[no-any-return]

    def download(self, request: volumes_pb.DownloadRequest) -> Generator[volumes_pb.DownloadChunk, None, None]:
        """A Download stream: opened again while the server is UNAVAILABLE before its
        first message (the retry policy of unary calls); a connection lost after that
        raises Unavailable. Closing the iterator early cancels the call. No deadline."""
        stub = self._stubs["volumes"]
        stream: Any = None
        try:
            try:
                for attempt in retrying(self.retry_for, target=self.address):
                    with attempt:
                        stream = stub.Download(request, metadata=self.metadata)
                        first = next(stream, None)
            except grpc.RpcError as exc:
                if unavailable(exc):
                    raise gave_up(exc, self.address, self.retry_for) from None
                raise
            if first is not None:
                yield first
                yield from stream
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            if stream is not None:
                stream.cancel()

    def attach(self, requests: Iterator[pb.AttachRequest]) -> Any:
        """An Attach stream fed by `requests`."""
        return self._stubs["jobs"].Attach(requests, metadata=self.metadata)

    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()


class AsyncTransport(_Settings):
    """The asyncio connection. A grpc.aio channel belongs to the event loop it is made
    in, so this one is opened on first use (inside the loop), not in __init__."""

    def __init__(self, config: ClientConfig, channel: aio.Channel | None = None) -> None:
        super().__init__(config)
        self._owns_channel = channel is None
        self._channel = channel
        self._stub_map: dict[Service, Any] | None = None

    def stub(self, service: Service) -> Any:
        return self._stubs()[service]

    def _stubs(self) -> dict[Service, Any]:
        if self._stub_map is None:
            if self._channel is None:
                self._channel = open_aio_channel(self.address, self.tls_ca)
            self._stub_map = _stubs(self._channel)
        return self._stub_map

    def open(self) -> None:
        """Open the channel now (in the running loop)."""
        self._stubs()

    async def call(self, rpc: Rpc[T]) -> T:
        """As `Transport.call`."""
        method = self._method(self._stubs(), rpc)
        try:
            async for attempt in async_retrying(self.retry_for, retry=rpc.retry, target=self.address):
                with attempt:
                    response = await method(rpc.request, timeout=self.rpc_timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            if rpc.retry and unavailable(exc):
                raise gave_up(exc, self.address, self.retry_for) from None
            raise from_rpc_error(exc) from None
        return rpc.parse(response)

    async def run(self, plan: Plan[T]) -> T:
        """As `Transport.run`."""
        step = advance(plan, None, None)
        while not isinstance(step, Done):
            step = await self._step(plan, step)
        return step.value

    async def _step(self, plan: Plan[T], rpc: Rpc[Any]) -> Rpc[Any] | Done[T]:
        try:
            answer = await self.call(rpc)
        except CloudpipeError as exc:
            return advance(plan, None, exc)
        return advance(plan, answer, None)

    def watch(self, ids: Iterable[int], timeout: float | None = None) -> Any:
        """A WatchMany stream (an aio call: `async for` it, `cancel()` it)."""
        return self.stub("jobs").WatchMany(watch_request(list(ids)), timeout=timeout, metadata=self.metadata)

    async def build_image(self, request: images_pb.BuildImageRequest) -> AsyncIterator[images_pb.BuildEvent]:
        """As `Transport.build_image`."""
        try:
            async for event in self.stub("images").Build(request, metadata=self.metadata):
                yield event
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def upload(self, requests: Callable[[], AsyncIterable[volumes_pb.UploadRequest]]) -> volumes_pb.FileEntry:
        """As `Transport.upload`."""
        stub = self.stub("volumes")
        try:
            async for attempt in async_retrying(self.retry_for, target=self.address):
                with attempt:
                    entry = await send_upload(stub.Upload(metadata=self.metadata), requests())
        except grpc.RpcError as exc:
            if unavailable(exc):
                raise gave_up(exc, self.address, self.retry_for) from None
            raise from_rpc_error(exc) from None
        return entry

    async def download(self, request: volumes_pb.DownloadRequest) -> AsyncGenerator[volumes_pb.DownloadChunk, None]:
        """As `Transport.download`."""
        stub = self.stub("volumes")
        stream: Any = None
        try:
            try:
                async for attempt in async_retrying(self.retry_for, target=self.address):
                    with attempt:
                        stream = stub.Download(request, metadata=self.metadata)
                        first = await stream.read()
            except grpc.RpcError as exc:
                if unavailable(exc):
                    raise gave_up(exc, self.address, self.retry_for) from None
                raise
            message = first
            while message is not aio.EOF:
                yield message
                message = await stream.read()
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            if stream is not None:
                stream.cancel()

    def attach(self) -> Any:
        """An Attach stream to `write()` requests into and `async for` events from."""
        return self.stub("jobs").Attach(metadata=self.metadata)

    async def close(self) -> None:
        if self._owns_channel and self._channel is not None:
            await self._channel.close()
