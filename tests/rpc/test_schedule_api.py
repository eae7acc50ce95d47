"""SavedJobService and ScheduleService as any gRPC client sees them: bad input is refused
with the right status and a message naming the field; reflection lists both services."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as jobs_pb
from cloudpipe_proto.v1 import schedules_pb2 as pb
from cloudpipe_proto.v1 import schedules_pb2_grpc as pb_grpc
from tests.rpc.test_grpc_api import auth, grpcurl
from tests.support import ServerProcess


@pytest.fixture
def stubs(server: ServerProcess) -> Iterator[tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub]]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.SavedJobServiceStub(channel), pb_grpc.ScheduleServiceStub(channel)


def refused(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    error: grpc.Call = raised.value  # type: ignore[assignment]
    return error.code(), error.details() or ""


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_schedules_with_bad_cron_zone_or_target_are_invalid_naming_the_field(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    _, schedules = stubs
    job = jobs_pb.JobSpec(cmd="true")
    cases = {
        "spec.cron: '61 * * * *' is not a valid cron expression": pb.ScheduleSpec(cron="61 * * * *", job=job),
        "spec.cron: 'every day' is not a cron expression": pb.ScheduleSpec(cron="every day", job=job),
        "spec.cron: '0 0 30 2 *' never fires": pb.ScheduleSpec(cron="0 0 30 2 *", job=job),
        "spec.timezone: unknown time zone 'Europe/Atlantis'": pb.ScheduleSpec(
            cron="@daily", timezone="Europe/Atlantis", job=job
        ),
        "spec.target: name exactly one of saved_job and job": pb.ScheduleSpec(cron="@daily"),
        "spec.job.cmd: every job needs a command": pb.ScheduleSpec(cron="@daily", job=jobs_pb.JobSpec()),
        "spec.jitter: must be between": pb.ScheduleSpec(cron="@daily", job=job, jitter={"seconds": -1}),
        "spec.name: '' is not a valid name": pb.ScheduleSpec(name="", cron="@daily", job=job),
        # out of range: refused by name, not an internal error
        "spec.start_at: not a valid timestamp": pb.ScheduleSpec(cron="@daily", job=job, start_at={"seconds": 10**13}),
        "spec.start_at: 9999-12-31T00:00:00+00:00 is out of range": pb.ScheduleSpec(
            cron="@daily", job=job, start_at={"seconds": 253402214400}
        ),
        "spec.end_at: 2300-01-01T00:00:00+00:00 is out of range": pb.ScheduleSpec(
            cron="@daily", job=job, end_at={"seconds": 10413792000}
        ),
        "spec.jitter: not a valid duration": pb.ScheduleSpec(cron="@daily", job=job, jitter={"seconds": 10**15}),
        "spec.catchup_window: at most 366 days": pb.ScheduleSpec(
            cron="@daily", job=job, catchup=pb.CATCHUP_POLICY_RUN_ALL, catchup_window={"seconds": 3 * 10**11}
        ),
    }
    for message, spec in cases.items():
        if spec.name == "" and not message.startswith("spec.name"):
            spec.name = unique("bad")
        code, details = refused(
            lambda s=spec: schedules.Create(pb.CreateScheduleRequest(spec=s), metadata=auth(server))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (message, details)
        assert details.startswith(message), (message, details)


def test_unknown_saved_jobs_are_not_found_by_name(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    saved, schedules = stubs
    spec = pb.ScheduleSpec(name=unique("s"), cron="@hourly", saved_job="no-such-job")
    code, details = refused(lambda: schedules.Create(pb.CreateScheduleRequest(spec=spec), metadata=auth(server)))
    assert code == grpc.StatusCode.NOT_FOUND and details == "saved_job: no saved job named 'no-such-job'"
    code, details = refused(lambda: saved.Run(pb.RunSavedJobRequest(name="no-such-job"), metadata=auth(server)))
    assert code == grpc.StatusCode.NOT_FOUND and "no-such-job" in details
    name = unique("job")
    saved.Create(pb.CreateSavedJobRequest(name=name, spec=jobs_pb.JobSpec(cmd="true")), metadata=auth(server))
    code, details = refused(lambda: saved.Get(pb.GetSavedJobRequest(name=name, version=9), metadata=auth(server)))
    assert code == grpc.StatusCode.NOT_FOUND and details == f"saved_job: saved job {name!r} has no version 9"


def test_name_clashes_are_already_exists(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    saved, schedules = stubs
    name = unique("report")
    request = pb.CreateSavedJobRequest(name=name, spec=jobs_pb.JobSpec(cmd="true"))
    assert saved.Create(request, metadata=auth(server)).version == 1
    code, details = refused(lambda: saved.Create(request, metadata=auth(server)))
    assert code == grpc.StatusCode.ALREADY_EXISTS and details.startswith(f"name: a saved job named {name!r}")
    spec = pb.ScheduleSpec(name=name, cron="@daily", saved_job=name)
    schedules.Create(pb.CreateScheduleRequest(spec=spec), metadata=auth(server))
    code, details = refused(lambda: schedules.Create(pb.CreateScheduleRequest(spec=spec), metadata=auth(server)))
    assert code == grpc.StatusCode.ALREADY_EXISTS and details.startswith(f"name: a schedule named {name!r}")
    code, details = refused(lambda: saved.Delete(pb.DeleteSavedJobRequest(name=name), metadata=auth(server)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and f"run by schedule(s) {name}" in details
    schedules.Delete(pb.DeleteScheduleRequest(name=name), metadata=auth(server))
    saved.Delete(pb.DeleteSavedJobRequest(name=name), metadata=auth(server))


def test_shell_args_cannot_be_given_to_a_function_saved_job(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    saved, _ = stubs
    name = unique("fn")
    function = jobs_pb.JobSpec(cmd="python3 -m cloudpipe_runner", serializer="cloudpickle", client_python="3.11")
    saved.Create(pb.CreateSavedJobRequest(name=name, spec=function), metadata=auth(server))
    run = pb.RunSavedJobRequest(name=name, overrides=pb.RunOverrides(args=["x"]))
    code, details = refused(lambda: saved.Run(run, metadata=auth(server)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("overrides.args:")


def test_preview_validates_a_definition_without_storing_it(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    _, schedules = stubs
    spec = pb.ScheduleSpec(name=unique("p"), cron="30 2 * * *", timezone="Europe/Berlin", job=jobs_pb.JobSpec(cmd="t"))
    request = pb.PreviewScheduleRequest(spec=spec, count=2, after={"seconds": 1774699200})  # 2026-03-28 12:00 UTC
    times = schedules.Preview(request, metadata=auth(server)).times
    assert [t.scheduled_at.ToJsonString() for t in times] == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    code, _ = refused(lambda: schedules.Get(pb.GetScheduleRequest(name=spec.name), metadata=auth(server)))
    assert code == grpc.StatusCode.NOT_FOUND
    far = pb.PreviewScheduleRequest(spec=spec, count=2, after={"seconds": 253402214400})  # year 9999
    code, details = refused(lambda: schedules.Preview(far, metadata=auth(server)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("after: 9999-12-31T00:00:00+00:00 is out")


def test_schedules_are_scoped_to_the_account(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    _, schedules = stubs
    code, _ = refused(lambda: schedules.List(pb.ListSchedulesRequest()))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_reflection_lists_the_schedule_services(server: ServerProcess) -> None:
    listed = grpcurl(server.address, "list")
    assert {"cloudpipe.v1.SavedJobService", "cloudpipe.v1.ScheduleService"} <= set(listed.stdout.split())
    described = grpcurl(server.address, "describe", "cloudpipe.v1.ScheduleService")
    assert "rpc Preview" in described.stdout and "rpc Trigger" in described.stdout


def test_apply_checks_every_entry_and_writes_none_of_a_bad_change_set(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    saved, schedules = stubs
    good, bad, nightly, weekly = unique("good"), unique("bad"), unique("nightly"), unique("weekly")
    request = pb.ApplyRequest(
        saved_jobs=[
            pb.ApplySavedJob(name=good, spec=jobs_pb.JobSpec(cmd="true")),
            pb.ApplySavedJob(name=bad, spec=jobs_pb.JobSpec(cmd="true", image="Not A Valid Image")),
        ],
        schedules=[
            # runs the saved job of this request, at a version it will not have
            pb.ApplySchedule(spec=pb.ScheduleSpec(name=nightly, cron="@daily", saved_job=good, saved_job_version=2)),
            pb.ApplySchedule(spec=pb.ScheduleSpec(name=weekly, cron="61 * * * *", saved_job=good)),
        ],
    )
    code, details = refused(lambda: schedules.Apply(request, metadata=auth(server)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("3 problems; nothing was changed")
    assert f"saved_jobs.{bad}.spec.image: 'Not A Valid Image'" in details
    assert f"schedules.{nightly}.saved_job_version: saved job {good!r} will be at version 1" in details
    assert f"schedules.{weekly}.cron: '61 * * * *' is not a valid cron expression" in details
    code, _ = refused(lambda: saved.Get(pb.GetSavedJobRequest(name=good), metadata=auth(server)))
    assert code == grpc.StatusCode.NOT_FOUND


def test_apply_stores_a_change_set_and_refuses_a_stale_one(
    stubs: tuple[pb_grpc.SavedJobServiceStub, pb_grpc.ScheduleServiceStub], server: ServerProcess
) -> None:
    _, schedules = stubs
    report, nightly = unique("report"), unique("nightly")
    spec = pb.ScheduleSpec(name=nightly, cron="@daily", saved_job=report, saved_job_version=1)
    request = pb.ApplyRequest(
        saved_jobs=[pb.ApplySavedJob(name=report, spec=jobs_pb.JobSpec(cmd="true"), description="d")],
        schedules=[pb.ApplySchedule(spec=spec)],
    )
    stored = schedules.Apply(request, metadata=auth(server))
    assert [(s.name, s.version) for s in stored.saved_jobs] == [(report, 1)]
    [schedule] = stored.schedules
    assert schedule.spec.saved_job == report and schedule.HasField("next_fire_at")
    code, details = refused(lambda: schedules.Apply(request, metadata=auth(server)))  # the same plan, again
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.startswith(f"saved_jobs.{report}: changed since it was read")
    update = pb.ApplyRequest(schedules=[pb.ApplySchedule(spec=spec, expected_updated_at=schedule.updated_at)])
    assert schedules.Apply(update, metadata=auth(server)).schedules[0].id == schedule.id
