"""JobService servicer: validate, convert, call the service layer, convert back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_server.auth.base import Principal
from cloudpipe_server.convert import (
    chunk_to_pb,
    exit_event_to_pb,
    job_to_pb,
    query_from_pb,
    spec_from_pb,
    status_event_to_pb,
    with_output,
)
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.executors.base import Signal
from cloudpipe_server.jobs.attach import AttachEvent
from cloudpipe_server.jobs.service import JobService
from cloudpipe_server.jobs.usage import Usage, UsageService
from cloudpipe_server.limits import check_query_size, check_submit_size
from cloudpipe_server.models import Stream
from cloudpipe_server.rpc.interceptor import current_principal


class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(self, service: JobService, usage: UsageService | None = None) -> None:
        self._service = service
        self._usage = usage

    async def Submit(self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext) -> pb.SubmitResponse:
        check_submit_size(len(request.jobs), request.ByteSize())  # before converting any job
        specs = [spec_from_pb(job, f"jobs[{i}]") for i, job in enumerate(request.jobs)]
        ids = await self._service.submit(current_principal(), specs)
        return pb.SubmitResponse(ids=ids)

    async def Get(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        caller, job_id = current_principal(), _id(request.id)
        # the history first: an attempt ending between the two reads is then missing from it
        # (it shows at the next Get), never there while the job still says it runs
        history = await self._service.attempts(caller, job_id)
        job = await self._service.get(caller, job_id, with_output=with_output(request.view))
        return job_to_pb(job, self._service.default_image, history)

    async def List(self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext) -> pb.ListJobsResponse:
        check_query_size(len(request.ids), len(request.names))
        jobs = await self._service.list_jobs(current_principal(), query_from_pb(request))
        image = self._service.default_image
        return pb.ListJobsResponse(jobs=[job_to_pb(job, image) for job in jobs])

    async def Kill(self, request: pb.KillJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        return job_to_pb(await self._service.kill(current_principal(), _id(request.id)), self._service.default_image)

    async def KillAll(self, request: pb.KillAllRequest, context: grpc.aio.ServicerContext) -> pb.KillAllResponse:
        return pb.KillAllResponse(ids=await self._service.kill_all(current_principal()))

    async def Delete(self, request: pb.DeleteJobsRequest, context: grpc.aio.ServicerContext) -> pb.DeleteJobsResponse:
        ids = [_id(job_id) for job_id in request.ids]
        return pb.DeleteJobsResponse(ids=await self._service.delete(current_principal(), ids))

    async def Wait(
        self, request: pb.WaitJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.JobStatusEvent]:
        async for job in self._service.watch(current_principal(), _id(request.id)):
            yield status_event_to_pb(job)

    async def WatchMany(
        self, request: pb.WatchManyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.JobStatusEvent]:
        async for job in self._service.watch_many(current_principal(), list(request.ids)):
            yield status_event_to_pb(job)

    async def QueueStats(
        self, request: pb.QueueStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueueStatsResponse:
        counts = await self._service.counts(current_principal())
        return pb.QueueStatsResponse(counts={status.value: n for status, n in counts.items()})

    async def Usage(self, request: pb.UsageRequest, context: grpc.aio.ServicerContext) -> pb.UsageResponse:
        if self._usage is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server keeps no usage")
            raise AssertionError("unreachable")
        usage = await self._usage.usage(
            current_principal(), all_accounts=request.all_accounts, window_minutes=request.window_minutes
        )
        return _usage_to_pb(usage)

    async def Attach(
        self, request_iterator: AsyncIterator[pb.AttachRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AttachEvent]:
        caller = current_principal()
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("action") != "start":
            raise InvalidArgument("start: the first AttachRequest must be `start` with a job id")
        job_id = _id(first.start.id)
        offsets = {Stream.STDOUT: first.start.stdout_offset, Stream.STDERR: first.start.stderr_offset}
        # Output and input run side by side; whichever fails first ends the call.
        # bounded: a client that stops reading slows its own watch, not the server's memory
        outbox: asyncio.Queue[pb.AttachEvent | BaseException | None] = asyncio.Queue(256)

        async def send() -> None:
            try:
                async for event in self._service.attach(caller, job_id, offsets):
                    await outbox.put(_event_to_pb(event))
                await outbox.put(None)
            except BaseException as exc:
                await outbox.put(exc)
                raise

        async def receive() -> None:
            try:
                async for request in request_iterator:
                    await self._act(caller, job_id, request)
            except Exception as exc:
                await outbox.put(exc)

        tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
        try:
            while (item := await outbox.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _act(self, caller: Principal, job_id: int, request: pb.AttachRequest) -> None:
        action = request.WhichOneof("action")
        if action == "stdin":
            await self._service.write_stdin(caller, job_id, request.stdin)
        elif action == "close_stdin":
            await self._service.close_stdin(caller, job_id)
        elif action == "signal":
            await self._service.signal(caller, job_id, _signal(request.signal))
        elif action == "resize":
            await self._service.resize(caller, job_id, request.resize.rows, request.resize.columns)
        elif action == "start":
            raise InvalidArgument("start: send it once, as the first request")
        else:
            raise InvalidArgument("action: every AttachRequest needs one of start, stdin, close_stdin, signal, resize")


def _event_to_pb(event: AttachEvent) -> pb.AttachEvent:
    if event.chunk is not None:
        return pb.AttachEvent(output=chunk_to_pb(event.chunk))
    if event.status is not None:
        return pb.AttachEvent(status=status_event_to_pb(event.status))
    assert event.exit is not None
    return pb.AttachEvent(exit=exit_event_to_pb(event.exit))


def _signal(value: int) -> Signal | None:
    if value == pb.SIGNAL_TERM:
        return Signal.TERM
    if value == pb.SIGNAL_INT:
        return Signal.INT
    if value == pb.SIGNAL_KILL:
        return None
    raise InvalidArgument(f"signal: unknown signal {value}")


def _id(value: int) -> int:
    if value == 0:
        raise InvalidArgument("id: a job id is required")
    return value


def _usage_to_pb(usage: Usage) -> pb.UsageResponse:
    answer = pb.UsageResponse(
        window_minutes=usage.window_minutes,
        counts={status.value: n for status, n in usage.counts.items()},
        done_per_minute=usage.done_per_minute,
        failed_per_minute=usage.failed_per_minute,
        max_queued_per_account=usage.quotas.max_queued_per_account,
        max_running_per_account=usage.quotas.max_running_per_account,
    )
    answer.window_start.FromDatetime(usage.window_start)
    answer.runtime.FromNanoseconds(usage.runtime_ns)
    for row in usage.accounts:
        account = answer.accounts.add(
            account=row.account,
            counts={status.value: n for status, n in row.counts.items()},
            done=row.done,
            failed=row.failed,
        )
        account.runtime.FromNanoseconds(row.runtime_ns)
    return answer
