"""`client.saved_jobs` and `client.schedules`: named job templates and cron schedules.

Example::

    client.saved_jobs.save_shell("report", "python3 /app/report.py", image="python:3.12")
    client.schedules.create("nightly", "30 2 * * *", saved_job="report", timezone="Europe/Berlin")
    client.schedules.preview("nightly", count=3)       # the next three fire times
    job = client.saved_jobs.run("report", args=["--dry-run"])

    @client.schedules.function("0 * * * *", timezone="Europe/Berlin")
    def hourly() -> int:                                # saved as a function job and
        return 42                                       # scheduled, both named "hourly"
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import cloudpickle
import grpc

from cloudpipe_proto.v1 import jobs_pb2 as jobs_pb
from cloudpipe_proto.v1 import schedules_pb2 as pb
from cloudpipe_proto.v1 import schedules_pb2_grpc as pb_grpc
from cloudpipe_sdk._errors import NotFound, from_rpc_error
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._schedule_types import (
    CATCHUP,
    OVERLAP,
    Fire,
    SavedJob,
    Schedule,
    function_spec,
    shell_spec,
)
from cloudpipe_sdk._serialize import dump_call

if TYPE_CHECKING:
    from cloudpipe_sdk._client import Client

F = TypeVar("F", bound=Callable[..., Any])


class _Accessor:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _once(self, method: Any, request: Any) -> Any:
        """A call that is not retried (it changes something)."""
        try:
            return method(request, timeout=self._client._timeout, metadata=self._client._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None


class SavedJobs(_Accessor):
    """Saved jobs of your account: `client.saved_jobs`."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self._stub = pb_grpc.SavedJobServiceStub(client._channel)  # type: ignore[no-untyped-call]

    def create(self, name: str, spec: jobs_pb.JobSpec, *, description: str = "") -> SavedJob:
        """Store version 1 (AlreadyExists if the name is taken)."""
        request = pb.CreateSavedJobRequest(name=name, spec=spec, description=description)
        return SavedJob.from_pb(self._once(self._stub.Create, request))

    def update(self, name: str, spec: jobs_pb.JobSpec, *, description: str = "") -> SavedJob:
        """Store a new version."""
        request = pb.UpdateSavedJobRequest(name=name, spec=spec, description=description)
        return SavedJob.from_pb(self._once(self._stub.Update, request))

    def save(self, name: str, spec: jobs_pb.JobSpec, *, description: str = "") -> SavedJob:
        """Create, or store a new version when `spec` or `description` changed."""
        try:
            current = self.get(name)
        except NotFound:
            return self.create(name, spec, description=description)
        if current.spec == spec and current.description == description:
            return current
        return self.update(name, spec, description=description)

    def save_shell(self, name: str, cmd: str, *, description: str = "", **options: Any) -> SavedJob:
        """Save a shell command; `options` as for `shell_spec` (image, env, timeout...)."""
        return self.save(name, shell_spec(cmd, **options), description=description)

    def save_function(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> SavedJob:
        """Save a call of a Python function (pickled with this client's Python)."""
        return self.save(name, function_spec(fn, args, kwargs), description=description)

    def get(self, name: str, *, version: int = 0) -> SavedJob:
        """The latest version, or `version`."""
        return SavedJob.from_pb(self._client._call(self._stub.Get, pb.GetSavedJobRequest(name=name, version=version)))

    def list(self) -> builtins.list[SavedJob]:
        response = self._client._call(self._stub.List, pb.ListSavedJobsRequest())
        return [SavedJob.from_pb(s) for s in response.saved_jobs]

    def delete(self, name: str) -> None:
        self._once(self._stub.Delete, pb.DeleteSavedJobRequest(name=name))

    def run(
        self,
        name: str,
        *,
        version: int = 0,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        image: str | None = None,
        cpus: float | None = None,
        memory: int | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Run a saved job, optionally with overrides. For a shell job `args` are
        appended to the command; for a function they (and `kwargs`) replace the saved
        call's arguments, re-pickled here (so this client's Python must load it).

        Example::

            client.saved_jobs.run("report", args=["--day", "2026-01-01"]).result()
        """
        overrides = pb.RunOverrides(
            env=dict(env or {}),
            image=image or "",
            resources=jobs_pb.Resources(cpus=cpus or 0.0, memory_bytes=memory or 0),
        )
        if timeout is not None:
            overrides.max_runtime.FromTimedelta(timedelta(seconds=timeout))
        if stdin is not None:
            overrides.stdin = stdin
        if args or kwargs:
            saved = self.get(name, version=version)
            version = saved.version
            if saved.is_function:
                fn, _, _ = cloudpickle.loads(saved.spec.stdin)
                overrides.stdin = dump_call(fn, tuple(args), dict(kwargs or {}))
            else:
                overrides.args.extend(str(a) for a in args)
        request = pb.RunSavedJobRequest(
            name=name, version=version, overrides=overrides, idempotency_key=idempotency_key or ""
        )
        return Job(self._client, self._once(self._stub.Run, request).job_id)


class Schedules(_Accessor):
    """Schedules of your account: `client.schedules`."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self._stub = pb_grpc.ScheduleServiceStub(client._channel)  # type: ignore[no-untyped-call]

    @staticmethod
    def spec(
        name: str,
        cron: str,
        *,
        saved_job: str | None = None,
        version: int = 0,
        job: jobs_pb.JobSpec | None = None,
        timezone: str = "UTC",
        jitter: float = 0.0,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        overlap: str = "skip",
        catchup: str = "run_once",
        catchup_window: float = 3600.0,
        description: str = "",
    ) -> pb.ScheduleSpec:
        """A schedule definition. Run `saved_job` (at `version`, 0 = the latest at each
        fire) or an inline `job`. `jitter` and `catchup_window` are in seconds;
        `overlap` is skip, allow, buffer_one or cancel_previous; `catchup` is skip,
        run_once or run_all."""
        if overlap not in OVERLAP or catchup not in CATCHUP:
            from cloudpipe_sdk._errors import InvalidRequest

            raise InvalidRequest(f"overlap must be one of {', '.join(OVERLAP)} and catchup one of {', '.join(CATCHUP)}")
        msg = pb.ScheduleSpec(
            name=name,
            cron=cron,
            timezone=timezone,
            saved_job_version=version,
            overlap=OVERLAP[overlap],
            catchup=CATCHUP[catchup],
            description=description,
        )
        if saved_job is not None:
            msg.saved_job = saved_job
        if job is not None:
            msg.job.CopyFrom(job)
        msg.jitter.FromTimedelta(timedelta(seconds=jitter))
        msg.catchup_window.FromTimedelta(timedelta(seconds=catchup_window))
        for field, moment in (("start_at", start_at), ("end_at", end_at)):
            if moment is not None:
                getattr(msg, field).FromDatetime(moment.astimezone(UTC))
        return msg

    def send(self, request: pb.CreateScheduleRequest | pb.UpdateScheduleRequest) -> Schedule:
        """Create or update from a ready definition (what `cloudpipe apply` sends)."""
        method = self._stub.Create if isinstance(request, pb.CreateScheduleRequest) else self._stub.Update
        return Schedule.from_pb(self._once(method, request))

    def create(self, name: str, cron: str, **options: Any) -> Schedule:
        """Create a schedule; `options` as for `Schedules.spec`.

        Example::

            client.schedules.create("nightly", "30 2 * * *", saved_job="report", timezone="Europe/Berlin")
        """
        request = pb.CreateScheduleRequest(spec=self.spec(name, cron, **options))
        return Schedule.from_pb(self._once(self._stub.Create, request))

    def update(self, name: str, cron: str, *, new_name: str | None = None, **options: Any) -> Schedule:
        """Replace a schedule's definition (renaming it to `new_name`)."""
        request = pb.UpdateScheduleRequest(name=name, spec=self.spec(new_name or name, cron, **options))
        return Schedule.from_pb(self._once(self._stub.Update, request))

    def get(self, name: str) -> Schedule:
        return Schedule.from_pb(self._client._call(self._stub.Get, pb.GetScheduleRequest(name=name)))

    def list(self) -> builtins.list[Schedule]:
        response = self._client._call(self._stub.List, pb.ListSchedulesRequest())
        return [Schedule.from_pb(s) for s in response.schedules]

    def delete(self, name: str) -> None:
        self._once(self._stub.Delete, pb.DeleteScheduleRequest(name=name))

    def pause(self, name: str) -> Schedule:
        return Schedule.from_pb(self._client._call(self._stub.Pause, pb.PauseScheduleRequest(name=name)))

    def resume(self, name: str) -> Schedule:
        return Schedule.from_pb(self._client._call(self._stub.Resume, pb.ResumeScheduleRequest(name=name)))

    def trigger(self, name: str) -> Fire:
        """Fire now (outside the cron times); the fire's `job_id` is the job."""
        return Fire.from_pb(self._once(self._stub.Trigger, pb.TriggerScheduleRequest(name=name)))

    def preview(self, name: str, *, count: int = 10, after: datetime | None = None) -> builtins.list[datetime]:
        """The next `count` fire times (with jitter: when they are due)."""
        request = pb.PreviewScheduleRequest(name=name, count=count)
        if after is not None:
            request.after.FromDatetime(after.astimezone(UTC))
        response = self._client._call(self._stub.Preview, request)
        return [t.due_at.ToDatetime(UTC) for t in response.times]

    def history(self, name: str, *, limit: int = 20) -> builtins.list[Fire]:
        """Fires, newest first."""
        response = self._client._call(self._stub.History, pb.ScheduleHistoryRequest(name=name, limit=limit))
        return [Fire.from_pb(f) for f in response.fires]

    def function(self, cron: str, *, name: str | None = None, **options: Any) -> Callable[[F], F]:
        """Decorator: save the function (called without arguments) as a saved job and
        run it on `cron`; both are named after the function unless `name` is given.
        Re-running the decorator updates both. The function itself is returned as is.

        Example::

            @client.schedules.function("*/10 * * * *", timezone="Europe/Berlin")
            def refresh() -> None: ...
        """

        def register(fn: F) -> F:
            label = name or fn.__name__.replace("_", "-")
            SavedJobs(self._client).save_function(label, fn)
            try:
                self.get(label)
            except NotFound:
                self.create(label, cron, saved_job=label, **options)
            else:
                self.update(label, cron, saved_job=label, **options)
            return fn

        return register
