"""`AsyncClient`: the SDK for asyncio, on grpc.aio, with the surface of `Client`
(`await client.submit(...)`, `await job.result()`, `async for` over a job's output,
over `client.map(...)` and over `client.as_completed(...)`; `client.saved_jobs`,
`client.schedules`, `client.images`, `client.volumes`, `client.secrets`,
`job.attach()`). Like `Client`, a thin facade over `BaseClient` and its transport
(here an `AsyncTransport`).

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

import builtins
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ALL_COMPLETED
from typing import TYPE_CHECKING, Any, TypeVar

from grpc import aio

from cloudpipe_sdk import _job_calls as calls
from cloudpipe_sdk._aio_job import AsyncJob
from cloudpipe_sdk._aio_waiting import AsyncDoneAndNotDone, as_completed, map_results, wait
from cloudpipe_sdk._base import BaseClient, starred, zipped
from cloudpipe_sdk._config import ClientConfig
from cloudpipe_sdk._images import AsyncImageReferences, AsyncImages
from cloudpipe_sdk._quotas import AsyncQuotas
from cloudpipe_sdk._schedules import AsyncSavedJobs, AsyncSchedules
from cloudpipe_sdk._secrets import AsyncSecrets
from cloudpipe_sdk._transport import AsyncTransport
from cloudpipe_sdk._types import JobSpec
from cloudpipe_sdk._volumes import AsyncVolumes

if TYPE_CHECKING:
    from typing import Unpack  # 3.11+: annotations only, so the SDK imports on 3.10

R = TypeVar("R")


class AsyncClient(BaseClient[AsyncTransport]):
    """A connection to a Cloudpipe server for asyncio code; settings as for `Client`.
    Use it as an async context manager (or `await client.close()`). The channel is
    opened inside the event loop, on first use.

    Example::

        async with AsyncClient("localhost:50051", api_key="...") as client:
            jobs = [await client.submit(pow, 2, n) for n in range(3)]
            print([await job.result() for job in jobs])     # [1, 2, 4]
    """

    def _open(self, config: ClientConfig, channel: aio.Channel | None) -> AsyncTransport:
        return AsyncTransport(config, channel)

    def _references(self, transport: AsyncTransport) -> AsyncImageReferences:
        return AsyncImageReferences(transport)

    @property
    def images(self) -> AsyncImages:
        """As `Client.images`, awaited."""
        return AsyncImages(self.transport)

    @property
    def volumes(self) -> AsyncVolumes:
        """As `Client.volumes`, awaited."""
        return AsyncVolumes(self.transport)

    @property
    def secrets(self) -> AsyncSecrets:
        """As `Client.secrets`, awaited."""
        return AsyncSecrets(self.transport)

    @property
    def quotas(self) -> AsyncQuotas:
        """As `Client.quotas`, awaited."""
        return AsyncQuotas(self.transport)

    async def _ensure_images(self, options: dict[str, Any]) -> None:
        """Build the Images these options (or the client's) name, before specs are made."""
        references = self.options._resolve
        if isinstance(references, AsyncImageReferences):
            await references.ensure(options.get("image") or self.options.image)

    async def close(self) -> None:
        if self._owner:
            await self.transport.close()

    async def __aenter__(self) -> AsyncClient:
        self.transport.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def saved_jobs(self) -> AsyncSavedJobs:
        """As `Client.saved_jobs`, awaited."""
        return AsyncSavedJobs(self.transport, self.options)

    @property
    def schedules(self) -> AsyncSchedules:
        """As `Client.schedules`, awaited."""
        return AsyncSchedules(self.transport, self.options)

    # -- submitting ------------------------------------------------------------------------

    async def shell(
        self,
        cmd: str,
        *,
        stdin: bytes | str | None = None,
        result_source: str = "stdout",
        interactive: bool = False,
        tty: bool = False,
        depends_on: Sequence[AsyncJob | int] = (),
        idempotency_key: str | None = None,
        **options: Any,
    ) -> AsyncJob:
        """As `Client.shell`."""
        await self._ensure_images(options)
        spec = self._shell_spec(
            cmd,
            stdin=stdin,
            result_source=result_source,
            interactive=interactive,
            tty=tty,
            depends_on=depends_on,
            options=options,
        )
        return (await self._submit([spec], idempotency_key))[0]

    async def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> AsyncJob:
        """As `Client.submit`."""
        await self._ensure_images({})
        return (await self._submit([self._function_spec(fn, args, kwargs)]))[0]

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        chunksize: int | None = None,
        timeout: float | None = None,
        return_exceptions: bool = False,
        progress: bool | None = None,
        **options: Any,
    ) -> AsyncIterator[R]:
        """As `Client.map`, as an async iterator (jobs are submitted when iteration starts).

        Example::

            results = [r async for r in client.map(pow, [2, 3], [2, 2])]   # [4, 9]
        """
        return self._map(fn, zipped(iterables), chunksize, timeout, return_exceptions, progress, options)

    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        *,
        chunksize: int | None = None,
        timeout: float | None = None,
        return_exceptions: bool = False,
        progress: bool | None = None,
        **options: Any,
    ) -> AsyncIterator[R]:
        """As `Client.starmap`, as an async iterator."""
        return self._map(fn, starred(iterable), chunksize, timeout, return_exceptions, progress, options)

    async def _map(
        self, fn: Callable[..., Any], calls_: Sequence[tuple[Any, ...]], *settings: Any
    ) -> AsyncIterator[Any]:
        await self._ensure_images(settings[-1])
        plan = self._map_plan(fn, calls_, *settings)
        async for value in map_results(self.transport, plan.results(await self._submit(plan.specs))):
            yield value

    # -- waiting -----------------------------------------------------------------------------

    def as_completed(self, jobs: Iterable[AsyncJob], timeout: float | None = None) -> AsyncGenerator[AsyncJob]:
        """Yield the jobs (of this client) as they finish, with their final state fetched.
        Raises Timeout after `timeout` seconds.

        Example::

            async for job in client.as_completed(jobs, timeout=600):
                print(job.id, await job.result())
        """
        return as_completed(self.transport, jobs, timeout)

    async def wait(
        self, jobs: Iterable[AsyncJob], timeout: float | None = None, return_when: str = ALL_COMPLETED
    ) -> AsyncDoneAndNotDone:
        """As `cloudpipe_sdk.wait`, for asyncio."""
        return await wait(self.transport, jobs, timeout, return_when)

    # -- reading -----------------------------------------------------------------------------

    def job(self, job_id: int) -> AsyncJob:
        """A handle on the job with this id, without fetching it (see `get`)."""
        return AsyncJob(self.transport, job_id)

    async def get(self, job_id: int) -> AsyncJob:
        """The job with this id (NotFound if it is not in your account)."""
        snapshot = await self.transport.call(calls.get_job(job_id))
        return AsyncJob(self.transport, job_id, snapshot)

    async def list(self, **filters: Unpack[calls.ListFilters]) -> builtins.list[AsyncJob]:
        """As `Client.list`."""
        snapshots = await self.transport.call(calls.list_jobs(**filters))
        return [AsyncJob(self.transport, snapshot.id, snapshot) for snapshot in snapshots]

    async def kill(self, job_id: int) -> AsyncJob:
        """As `Client.kill`."""
        snapshot = await self.transport.call(calls.kill_job(job_id))
        return AsyncJob(self.transport, job_id, snapshot)

    async def kill_all(self) -> builtins.list[int]:
        """As `Client.kill_all`."""
        return await self.transport.call(calls.kill_all())

    async def delete(self, *job_ids: int) -> builtins.list[int]:
        """As `Client.delete`."""
        return await self.transport.call(calls.delete_jobs(job_ids))

    async def queue_stats(self) -> dict[str, int]:
        """As `Client.queue_stats`."""
        return await self.transport.call(calls.queue_stats())

    async def _submit(self, specs: Sequence[JobSpec], idempotency_key: str | None = None) -> builtins.list[AsyncJob]:
        ids = await self.transport.run(calls.submit(specs, idempotency_key))
        return [AsyncJob(self.transport, job_id) for job_id in ids]
