"""JobService servicer: validate, convert, call the service layer, convert back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_server.convert import STATUS_TO_PB, job_to_pb, query_from_pb, spec_from_pb
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.rpc.interceptor import current_principal
from cloudpipe_server.service import JobService


class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(self, service: JobService) -> None:
        self._service = service

    async def Submit(self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext) -> pb.SubmitResponse:
        specs = [spec_from_pb(job, f"jobs[{i}]") for i, job in enumerate(request.jobs)]
        ids = await self._service.submit(current_principal(), specs)
        return pb.SubmitResponse(ids=ids)

    async def Get(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        return job_to_pb(await self._service.get(current_principal(), _id(request.id)))

    async def List(self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext) -> pb.ListJobsResponse:
        jobs = await self._service.list_jobs(current_principal(), query_from_pb(request))
        return pb.ListJobsResponse(jobs=[job_to_pb(job) for job in jobs])

    async def Kill(self, request: pb.KillJobRequest, context: grpc.aio.ServicerContext) -> pb.Job:
        return job_to_pb(await self._service.kill(current_principal(), _id(request.id)))

    async def KillAll(self, request: pb.KillAllRequest, context: grpc.aio.ServicerContext) -> pb.KillAllResponse:
        return pb.KillAllResponse(ids=await self._service.kill_all(current_principal()))

    async def Wait(
        self, request: pb.WaitJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.JobStatusEvent]:
        async for job in self._service.watch(current_principal(), _id(request.id)):
            event = pb.JobStatusEvent(id=job.id, status=STATUS_TO_PB[job.status], reason=job.reason)  # type: ignore[arg-type]
            if job.return_code is not None:
                event.return_code = job.return_code
            yield event

    async def QueueStats(
        self, request: pb.QueueStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueueStatsResponse:
        counts = await self._service.counts(current_principal())
        return pb.QueueStatsResponse(counts={status.value: n for status, n in counts.items()})


def _id(value: int) -> int:
    if value == 0:
        raise InvalidArgument("id: a job id is required")
    return value
