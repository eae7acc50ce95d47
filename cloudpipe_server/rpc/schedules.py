"""SavedJobService and ScheduleService servicers: validate, convert, call the service
layer, convert back."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from cloudpipe_proto.v1 import jobs_pb2
from cloudpipe_proto.v1 import schedules_pb2 as pb
from cloudpipe_proto.v1 import schedules_pb2_grpc as pb_grpc
from cloudpipe_server.convert import spec_from_pb, timestamp_from_pb
from cloudpipe_server.convert_schedules import (
    fire_to_pb,
    overrides_from_pb,
    request_time,
    saved_job_to_pb,
    schedule_spec_from_pb,
    schedule_to_pb,
    timestamp,
)
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.rpc.interceptor import current_principal
from cloudpipe_server.scheduler.apply import MAX_APPLY_ENTRIES, ApplyService, ScheduleEntry
from cloudpipe_server.scheduler.models import SavedJobWrite
from cloudpipe_server.scheduler.service import SavedJobService, ScheduleService

Context: TypeAlias = grpc.aio.ServicerContext


class SavedJobServicer(pb_grpc.SavedJobServiceServicer):
    def __init__(self, service: SavedJobService) -> None:
        self._service = service

    async def Create(self, request: pb.CreateSavedJobRequest, context: Context) -> pb.SavedJob:
        spec = spec_from_pb(_required_spec(request), "spec")
        return saved_job_to_pb(await self._service.create(current_principal(), request.name, spec, request.description))

    async def Update(self, request: pb.UpdateSavedJobRequest, context: Context) -> pb.SavedJob:
        spec = spec_from_pb(_required_spec(request), "spec")
        return saved_job_to_pb(await self._service.update(current_principal(), request.name, spec, request.description))

    async def Get(self, request: pb.GetSavedJobRequest, context: Context) -> pb.SavedJob:
        return saved_job_to_pb(await self._service.get(current_principal(), request.name, request.version))

    async def List(self, request: pb.ListSavedJobsRequest, context: Context) -> pb.ListSavedJobsResponse:
        saved = await self._service.list_all(current_principal())
        return pb.ListSavedJobsResponse(saved_jobs=[saved_job_to_pb(s) for s in saved])

    async def Delete(self, request: pb.DeleteSavedJobRequest, context: Context) -> pb.DeleteSavedJobResponse:
        await self._service.delete(current_principal(), request.name)
        return pb.DeleteSavedJobResponse()

    async def Run(self, request: pb.RunSavedJobRequest, context: Context) -> pb.RunSavedJobResponse:
        overrides = overrides_from_pb(request.overrides)
        job_id, version = await self._service.run(
            current_principal(), request.name, request.version, overrides, request.idempotency_key
        )
        return pb.RunSavedJobResponse(job_id=job_id, version=version)


class ScheduleServicer(pb_grpc.ScheduleServiceServicer):
    def __init__(self, service: ScheduleService, apply: ApplyService) -> None:
        self._service = service
        self._apply = apply

    async def Create(self, request: pb.CreateScheduleRequest, context: Context) -> pb.Schedule:
        spec = schedule_spec_from_pb(request.spec)
        return schedule_to_pb(await self._service.create(current_principal(), spec))

    async def Update(self, request: pb.UpdateScheduleRequest, context: Context) -> pb.Schedule:
        spec = schedule_spec_from_pb(request.spec)
        return schedule_to_pb(await self._service.update(current_principal(), request.name, spec))

    async def Get(self, request: pb.GetScheduleRequest, context: Context) -> pb.Schedule:
        view = await self._service.get(current_principal(), request.name)
        return schedule_to_pb(view.schedule, view.last_fire)

    async def List(self, request: pb.ListSchedulesRequest, context: Context) -> pb.ListSchedulesResponse:
        views = await self._service.list_all(current_principal())
        return pb.ListSchedulesResponse(schedules=[schedule_to_pb(v.schedule, v.last_fire) for v in views])

    async def Delete(self, request: pb.DeleteScheduleRequest, context: Context) -> pb.DeleteScheduleResponse:
        await self._service.delete(current_principal(), request.name)
        return pb.DeleteScheduleResponse()

    async def Pause(self, request: pb.PauseScheduleRequest, context: Context) -> pb.Schedule:
        return schedule_to_pb(await self._service.pause(current_principal(), request.name))

    async def Resume(self, request: pb.ResumeScheduleRequest, context: Context) -> pb.Schedule:
        return schedule_to_pb(await self._service.resume(current_principal(), request.name))

    async def Trigger(self, request: pb.TriggerScheduleRequest, context: Context) -> pb.Fire:
        return fire_to_pb(await self._service.trigger(current_principal(), request.name))

    async def Preview(self, request: pb.PreviewScheduleRequest, context: Context) -> pb.PreviewScheduleResponse:
        caller = current_principal()
        subject = request.WhichOneof("subject")
        if subject == "name":
            view = await self._service.get(caller, request.name)
            spec, schedule_id = view.schedule.spec, view.schedule.id
        elif subject == "spec":
            spec, schedule_id = await self._service.validate(caller, schedule_spec_from_pb(request.spec), "spec."), ""
        else:
            raise InvalidArgument("subject: give the name of a schedule or a spec")
        times = await self._service.preview(
            caller, spec, request.count or 10, request_time(request, "after"), schedule_id=schedule_id
        )
        return pb.PreviewScheduleResponse(
            times=[pb.FireTime(scheduled_at=timestamp(s), due_at=timestamp(d)) for s, d in times]
        )

    async def History(self, request: pb.ScheduleHistoryRequest, context: Context) -> pb.ScheduleHistoryResponse:
        fires = await self._service.history(
            current_principal(), request.name, request.limit or 20, request_time(request, "before")
        )
        return pb.ScheduleHistoryResponse(fires=[fire_to_pb(f) for f in fires])

    async def Apply(self, request: pb.ApplyRequest, context: Context) -> pb.ApplyResponse:
        if len(request.saved_jobs) > MAX_APPLY_ENTRIES or len(request.schedules) > MAX_APPLY_ENTRIES:
            raise InvalidArgument(f"saved_jobs, schedules: at most {MAX_APPLY_ENTRIES} entries each")
        saved = [
            SavedJobWrite(
                job.name,
                spec_from_pb(_required_spec(job), f"saved_jobs.{job.name}.spec"),
                job.description,
                job.expected_version,
            )
            for job in request.saved_jobs
        ]
        entries = [
            ScheduleEntry(
                schedule_spec_from_pb(entry.spec, f"schedules.{entry.spec.name}.spec"),
                timestamp_from_pb(entry.expected_updated_at, f"schedules.{entry.spec.name}.expected_updated_at")
                if entry.HasField("expected_updated_at")
                else None,
            )
            for entry in request.schedules
        ]
        stored_jobs, stored = await self._apply.apply(current_principal(), saved, entries)
        return pb.ApplyResponse(
            saved_jobs=[saved_job_to_pb(s) for s in stored_jobs], schedules=[schedule_to_pb(s) for s in stored]
        )


def _required_spec(
    request: pb.CreateSavedJobRequest | pb.UpdateSavedJobRequest | pb.ApplySavedJob,
) -> jobs_pb2.JobSpec:
    if not request.HasField("spec"):
        raise InvalidArgument("spec: a saved job needs a job spec")
    return request.spec
