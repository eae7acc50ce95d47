"""`client.saved_jobs` and `client.schedules`: named job templates and cron schedules,
for `Client` (`SavedJobs`, `Schedules`) and `AsyncClient` (`AsyncSavedJobs`,
`AsyncSchedules`, the same methods awaited). Requests and answers are made once, in
`cloudpipe_sdk._schedule_calls`; these classes only choose how to send them.

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
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from cloudpipe_sdk import _schedule_calls as calls
from cloudpipe_sdk._aio_job import AsyncJob
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._options import JobOptions
from cloudpipe_sdk._types import Fire, JobSpec, SavedJob, Schedule

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import AsyncTransport, Transport

F = TypeVar("F", bound=Callable[..., Any])


class SavedJobs:
    """Saved jobs of your account: `client.saved_jobs`. Specs are built with the
    client's job options (`client.with_options(...).saved_jobs`), serializer included."""

    def __init__(self, transport: Transport, options: JobOptions) -> None:
        self._transport = transport
        self._options = options

    def create(self, name: str, spec: JobSpec, *, description: str = "") -> SavedJob:
        """Store version 1 (AlreadyExists if the name is taken)."""
        return self._transport.call(calls.create_saved_job(name, spec, description))

    def update(self, name: str, spec: JobSpec, *, description: str = "") -> SavedJob:
        """Store a new version."""
        return self._transport.call(calls.update_saved_job(name, spec, description))

    def save(self, name: str, spec: JobSpec, *, description: str = "") -> SavedJob:
        """Create, or store a new version when `spec` or `description` changed."""
        return self._transport.run(calls.save(name, spec, description))

    def save_shell(
        self, name: str, cmd: str, *, description: str = "", stdin: bytes | str | None = None, **options: Any
    ) -> SavedJob:
        """Save a shell command; `options` are `JobOptions` (image, env, timeout, memory...)."""
        spec = self._options.merged(**options).shell_spec(cmd, stdin=stdin)
        return self.save(name, spec, description=description)

    def save_function(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> SavedJob:
        """Save a call of a Python function (pickled with this client's Python and serializer)."""
        spec = self._options.function_spec(fn, tuple(args), dict(kwargs or {}))
        return self.save(name, spec, description=description)

    def get(self, name: str, *, version: int = 0) -> SavedJob:
        """The latest version, or `version`."""
        return self._transport.call(calls.get_saved_job(name, version))

    def list(self) -> builtins.list[SavedJob]:
        return self._transport.call(calls.list_saved_jobs())

    def delete(self, name: str) -> None:
        self._transport.call(calls.delete_saved_job(name))

    def run(self, name: str, **overrides: Any) -> Job:
        """Run a saved job, optionally with overrides: `version`, `args`, `kwargs`,
        `stdin`, `env`, `image`, `cpus`, `memory`, `timeout`, `idempotency_key`. For a
        shell job `args` are appended to the command; for a function they (and
        `kwargs`) replace the saved call's arguments, re-pickled here (so this client's
        Python must load it).

        Example::

            client.saved_jobs.run("report", args=["--day", "2026-01-01"]).result()
        """
        return Job(self._transport, self._transport.run(calls.run_saved_job(name, **overrides)))


class Schedules:
    """Schedules of your account: `client.schedules`."""

    spec = staticmethod(calls.schedule_spec)

    def __init__(self, transport: Transport, options: JobOptions) -> None:
        self._transport = transport
        self._options = options

    def create(self, name: str, cron: str, **options: Any) -> Schedule:
        """Create a schedule; `options` as for `Schedules.spec` (`saved_job=`, `timezone`,
        `jitter`, `overlap`...), or `cmd=` for an inline shell command with its job
        options (`image`, `env`, `timeout`, `memory`, `cpus`, `network`, `stdin`...),
        built with this client's options as `client.shell` builds a job.

        Example::

            client.schedules.create("nightly", "30 2 * * *", saved_job="report", timezone="Europe/Berlin")
            client.schedules.create("tick", "*/5 * * * *", cmd="date", image="alpine:3", timeout=60)
        """
        spec = self.spec(name, cron, **calls.inline_job(self._options, options))
        return self._transport.call(calls.create_schedule(spec))

    def update(self, name: str, cron: str, *, new_name: str | None = None, **options: Any) -> Schedule:
        """Replace a schedule's definition (renaming it to `new_name`); `options` as for
        `create`."""
        spec = self.spec(new_name or name, cron, **calls.inline_job(self._options, options))
        return self._transport.call(calls.update_schedule(name, spec))

    def get(self, name: str) -> Schedule:
        return self._transport.call(calls.get_schedule(name))

    def list(self) -> builtins.list[Schedule]:
        return self._transport.call(calls.list_schedules())

    def delete(self, name: str) -> None:
        self._transport.call(calls.delete_schedule(name))

    def pause(self, name: str) -> Schedule:
        return self._transport.call(calls.pause_schedule(name))

    def resume(self, name: str) -> Schedule:
        return self._transport.call(calls.resume_schedule(name))

    def trigger(self, name: str) -> Fire:
        """Fire now (outside the cron times); the fire's `job_id` is the job."""
        return self._transport.call(calls.trigger_schedule(name))

    def preview(self, name: str, *, count: int = 10, after: datetime | None = None) -> builtins.list[datetime]:
        """The next `count` fire times (with jitter: when they are due)."""
        return self._transport.call(calls.preview_schedule(name, count, after))

    def history(self, name: str, *, limit: int = 20) -> builtins.list[Fire]:
        """Fires, newest first."""
        return self._transport.call(calls.schedule_history(name, limit))

    def function(self, cron: str, *, name: str | None = None, **options: Any) -> Callable[[F], F]:
        """Decorator: save the function (called without arguments) as a saved job and
        run it on `cron`; both are named after the function unless `name` is given.
        Re-running the decorator updates both. The function itself is returned as is.

        Example::

            @client.schedules.function("*/10 * * * *", timezone="Europe/Berlin")
            def refresh() -> None: ...
        """

        def register(fn: F) -> F:
            self._transport.run(calls.schedule_function(fn, cron, self._options, name=name, **options))
            return fn

        return register


class AsyncSavedJobs:
    """`SavedJobs` for `AsyncClient`: the same methods, awaited."""

    def __init__(self, transport: AsyncTransport, options: JobOptions) -> None:
        self._transport = transport
        self._options = options

    async def create(self, name: str, spec: JobSpec, *, description: str = "") -> SavedJob:
        return await self._transport.call(calls.create_saved_job(name, spec, description))

    async def update(self, name: str, spec: JobSpec, *, description: str = "") -> SavedJob:
        return await self._transport.call(calls.update_saved_job(name, spec, description))

    async def save(self, name: str, spec: JobSpec, *, description: str = "") -> SavedJob:
        return await self._transport.run(calls.save(name, spec, description))

    async def save_shell(
        self, name: str, cmd: str, *, description: str = "", stdin: bytes | str | None = None, **options: Any
    ) -> SavedJob:
        spec = self._options.merged(**options).shell_spec(cmd, stdin=stdin)
        return await self.save(name, spec, description=description)

    async def save_function(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> SavedJob:
        spec = self._options.function_spec(fn, tuple(args), dict(kwargs or {}))
        return await self.save(name, spec, description=description)

    async def get(self, name: str, *, version: int = 0) -> SavedJob:
        return await self._transport.call(calls.get_saved_job(name, version))

    async def list(self) -> builtins.list[SavedJob]:
        return await self._transport.call(calls.list_saved_jobs())

    async def delete(self, name: str) -> None:
        await self._transport.call(calls.delete_saved_job(name))

    async def run(self, name: str, **overrides: Any) -> AsyncJob:
        """As `SavedJobs.run`."""
        return AsyncJob(self._transport, await self._transport.run(calls.run_saved_job(name, **overrides)))


class AsyncSchedules:
    """`Schedules` for `AsyncClient`: the same methods, awaited; `function` is a
    coroutine taking the function (`await client.schedules.function(fn, cron)`)."""

    spec = staticmethod(calls.schedule_spec)

    def __init__(self, transport: AsyncTransport, options: JobOptions) -> None:
        self._transport = transport
        self._options = options

    async def create(self, name: str, cron: str, **options: Any) -> Schedule:
        """As `Schedules.create` (`cmd=` and job options for an inline command)."""
        spec = self.spec(name, cron, **calls.inline_job(self._options, options))
        return await self._transport.call(calls.create_schedule(spec))

    async def update(self, name: str, cron: str, *, new_name: str | None = None, **options: Any) -> Schedule:
        spec = self.spec(new_name or name, cron, **calls.inline_job(self._options, options))
        return await self._transport.call(calls.update_schedule(name, spec))

    async def get(self, name: str) -> Schedule:
        return await self._transport.call(calls.get_schedule(name))

    async def list(self) -> builtins.list[Schedule]:
        return await self._transport.call(calls.list_schedules())

    async def delete(self, name: str) -> None:
        await self._transport.call(calls.delete_schedule(name))

    async def pause(self, name: str) -> Schedule:
        return await self._transport.call(calls.pause_schedule(name))

    async def resume(self, name: str) -> Schedule:
        return await self._transport.call(calls.resume_schedule(name))

    async def trigger(self, name: str) -> Fire:
        return await self._transport.call(calls.trigger_schedule(name))

    async def preview(self, name: str, *, count: int = 10, after: datetime | None = None) -> builtins.list[datetime]:
        return await self._transport.call(calls.preview_schedule(name, count, after))

    async def history(self, name: str, *, limit: int = 20) -> builtins.list[Fire]:
        return await self._transport.call(calls.schedule_history(name, limit))

    async def function(self, fn: F, cron: str, *, name: str | None = None, **options: Any) -> F:
        """As the `Schedules.function` decorator: save `fn` and schedule it on `cron`."""
        await self._transport.run(calls.schedule_function(fn, cron, self._options, name=name, **options))
        return fn
