"""Server push for the web UI: Server-Sent Events fed by the gRPC streams.

Two feeds, each one HTTP response of `text/event-stream` that lasts at most
`LIVE_SECONDS` (then `event: end`; the page reconnects with what it already has, so a
gateway restart or a dropped connection costs one reconnect):

- the jobs page (`GET /ui/api/jobs/live?ids=1,2&after=N`): a `job` event (a summary,
  never output) whenever one of `ids` changes status, through one gRPC `Wait` stream
  per unfinished job (at most `MAX_WAITS`; the rest are re-read in one `List` by id
  every `POLL_SECONDS`), and for every job created after `after`, found by a `List`
  of ids above the newest one seen (an indexed read of the new rows only, not a
  re-read of the list), each then watched like the others;
- the job page (`GET /ui/api/job/live?jid=N&stdout=O&stderr=O`): the gRPC `Attach`
  stream as `output` events (stream, offset, base64 data: chunks in the order the
  server sent them, which is what the page's interleaved view shows), `job` events on
  each status change and a final `exit`.

Errors before the stream starts (bad credentials, no such job) are answered in the Go
envelope like every `/ui/api/` route; once streaming, as `event: error`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc
from prometheus_client import Gauge
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cloudpipe_common.waiting import within
from cloudpipe_proto.v1 import jobs_pb2 as pb
from http_gateway import multyvac
from http_gateway.caller import Caller
from http_gateway.multyvac import ApiError
from http_gateway.ui import parse_jid
from http_gateway.ui_jobs import parse_ids, summary

log = logging.getLogger(__name__)

LIVE_SECONDS = 120.0
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 1.0
MAX_WAITS = 100
MAX_IDS = 1000
_TERMINAL = frozenset({pb.JOB_STATUS_DONE, pb.JOB_STATUS_ERROR, pb.JOB_STATUS_KILLED, pb.JOB_STATUS_STALLED})
_STREAMS = {pb.OUTPUT_STREAM_STDOUT: "stdout", pb.OUTPUT_STREAM_STDERR: "stderr"}


class Calls(Protocol):
    """What the feeds need of the gateway: its stub and its unary call plumbing."""

    @property
    def stub(self) -> Any: ...

    async def call(self, op: str, method: str, request: Any, caller: Caller, jid: int = 0) -> Any: ...

    def caller(self, request: Request) -> Caller: ...


def sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventStream:
    """An ASGI endpoint answering `text/event-stream` from what `opener` returns; an
    ApiError raised by `opener` (before any event) is answered in the Go envelope."""

    def __init__(
        self, opener: Callable[[Request], Awaitable[AsyncIterator[bytes]]], open_feeds: Gauge | None = None
    ) -> None:
        self._opener = opener
        self._open_feeds = open_feeds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            if request.method != "GET":
                raise multyvac.minval("GET")
            events = await self._opener(request)
        except ApiError as exc:
            reply = exc.reply()
            await Response(reply.body, reply.status, headers={"content-type": reply.content_type})(scope, receive, send)
            return
        # `connection: close`: the socket of an ended feed is never worth reusing. (The
        # pages also end their feeds on `pagehide`: Chromium kept them open for pages in
        # its back/forward cache, and with its six connections per host taken, the next
        # page never loaded.)
        headers = {"cache-control": "no-store", "x-accel-buffering": "no", "connection": "close"}
        if self._open_feeds is not None:
            self._open_feeds.inc()
        try:
            await StreamingResponse(events, media_type="text/event-stream", headers=headers)(scope, receive, send)
        finally:
            if self._open_feeds is not None:
                self._open_feeds.dec()


async def _drain(queue: asyncio.Queue[bytes], tasks: list[asyncio.Task[None]], seconds: float) -> AsyncIterator[bytes]:
    """Yield what the tasks queue, with heartbeats, for `seconds`; then `end`. The
    tasks are cancelled however the stream ends (the browser went away, too)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        yield b": connected\n\n"
        while (remaining := deadline - loop.time()) > 0:
            try:
                item = await within(queue.get(), min(remaining, HEARTBEAT_SECONDS))
            except TimeoutError:
                item = b": ping\n\n"
            yield item
            if item.startswith((b"event: exit", b"event: error")):
                return
        yield sse("end", {})
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Feeds:
    """The UI's two live feeds over one gateway's gRPC channel."""

    def __init__(self, gateway: Calls, live_seconds: float = LIVE_SECONDS) -> None:
        self.gateway = gateway
        self._live_seconds = live_seconds

    async def summaries(self, caller: Caller, ids: list[int]) -> list[pb.Job]:
        request = pb.ListJobsRequest(ids=ids, limit=len(ids), view=pb.JOB_VIEW_SUMMARY)
        response = await self.gateway.call("list", "List", request, caller)
        return list(response.jobs)

    async def jobs(self, request: Request) -> AsyncIterator[bytes]:
        caller = self.gateway.caller(request)
        query = request.query_params
        ids = parse_ids(query.get("ids", ""), "ids")[:MAX_IDS]
        after = parse_ids(query.get("after", ""), "after")
        newest = after[0] if after else 0
        known = await self.summaries(caller, ids) if ids else []
        if not ids:
            await self.gateway.call("probe", "List", pb.ListJobsRequest(ids=[multyvac.MAX_JID], limit=1), caller)
        queue: asyncio.Queue[bytes] = asyncio.Queue(4096)
        feed = _JobsFeed(self, caller, queue, newest)
        for job in known:
            await queue.put(sse("job", summary(job)))
            feed.follow(job)
        return _drain(queue, [asyncio.create_task(feed.arrivals()), *feed.tasks], self._live_seconds)

    async def job(self, request: Request) -> AsyncIterator[bytes]:
        caller = self.gateway.caller(request)
        jid = parse_jid(request.scope["query_string"])
        query = request.query_params
        stdout, stderr = ((parse_ids(query.get(name, ""), name) or [0])[0] for name in ("stdout", "stderr"))
        found = await self.summaries(caller, [jid])
        if not found:
            raise multyvac.jnf(jid)
        job = found[0]
        queue: asyncio.Queue[bytes] = asyncio.Queue(256)
        await queue.put(sse("job", summary(job)))
        start = pb.AttachStart(id=jid, stdout_offset=stdout, stderr_offset=stderr)
        task = asyncio.create_task(self._attach(caller, start, queue))
        return _drain(queue, [task], self._live_seconds)

    async def _attach(self, caller: Caller, start: pb.AttachStart, queue: asyncio.Queue[bytes]) -> None:
        call = self.gateway.stub.Attach(metadata=caller.metadata, timeout=self._live_seconds + 5)
        try:
            await call.write(pb.AttachRequest(start=start))
            await call.done_writing()
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "output":
                    chunk = event.output
                    data = base64.b64encode(chunk.data).decode("ascii")
                    stream = _STREAMS.get(chunk.stream, "stdout")
                    await queue.put(sse("output", {"stream": stream, "offset": chunk.offset, "data": data}))
                elif kind in ("status", "exit"):
                    jobs = await self.summaries(caller, [start.id])
                    for job in jobs:
                        await queue.put(sse("job", summary(job)))
                    if kind == "exit":
                        await queue.put(sse("exit", {"status": multyvac.STATUS_NAMES.get(event.exit.status, "error")}))
                        return
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.CANCELLED:
                log.info("attach to job %d for %s ended: %s", start.id, caller.account, exc.code().name)
                await queue.put(sse("error", {"message": exc.details() or exc.code().name}))
        except ApiError as exc:
            await queue.put(sse("error", {"message": exc.message}))
        finally:
            call.cancel()


class _JobsFeed:
    """The state of one jobs-page stream: which jobs it follows, the newest id seen."""

    def __init__(self, feeds: Feeds, caller: Caller, queue: asyncio.Queue[bytes], newest: int) -> None:
        self._feeds = feeds
        self._caller = caller
        self._queue = queue
        self._newest = newest
        self._waits: dict[int, asyncio.Task[None]] = {}
        self._polled: dict[int, int] = {}  # id -> last status sent, for jobs beyond MAX_WAITS
        self.tasks: list[asyncio.Task[None]] = []

    def follow(self, job: pb.Job) -> None:
        if job.status in _TERMINAL or job.id in self._waits or job.id in self._polled:
            return
        if len(self._waits) < MAX_WAITS:
            task = asyncio.create_task(self._wait(job.id, job.status))
            self._waits[job.id] = task
            self.tasks.append(task)
        else:
            self._polled[job.id] = job.status

    async def _wait(self, jid: int, last: int) -> None:
        gateway = self._feeds.gateway
        call = gateway.stub.Wait(pb.WaitJobRequest(id=jid), metadata=self._caller.metadata)
        try:
            async for event in call:
                if event.status == last:
                    continue
                last = event.status
                for job in await self._feeds.summaries(self._caller, [jid]):
                    await self._queue.put(sse("job", summary(job)))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.CANCELLED:
                log.info("watching job %d for %s ended: %s", jid, self._caller.account, exc.code().name)
        except ApiError:
            pass
        finally:
            call.cancel()
            self._waits.pop(jid, None)

    async def arrivals(self) -> None:
        """New jobs (ids above the newest seen) and the jobs followed by polling."""
        with contextlib.suppress(ApiError):
            while True:
                request = pb.ListJobsRequest(after_id=self._newest + 1, limit=200, view=pb.JOB_VIEW_SUMMARY)
                response = await self._feeds.gateway.call("list", "List", request, self._caller)
                for job in response.jobs:
                    self._newest = max(self._newest, job.id)
                    await self._queue.put(sse("job", summary(job)))
                    self.follow(job)
                if self._polled:
                    for job in await self._feeds.summaries(self._caller, sorted(self._polled)):
                        if job.status != self._polled[job.id]:
                            await self._queue.put(sse("job", summary(job)))
                            self._polled[job.id] = job.status
                        if job.status in _TERMINAL:
                            del self._polled[job.id]
                if len(response.jobs) < 200:
                    await asyncio.sleep(POLL_SECONDS)
