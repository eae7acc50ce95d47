"""`Client`: the synchronous entry point of the SDK, a thin facade: settings and spec
building come from `BaseClient`, I/O from its `Transport`, the rest from the helpers."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import grpc

from cloudpipe_sdk import _job_calls as calls
from cloudpipe_sdk._base import BaseClient, starred, zipped
from cloudpipe_sdk._config import ClientConfig
from cloudpipe_sdk._executor import CloudpipeExecutor
from cloudpipe_sdk._function import RemoteFunction
from cloudpipe_sdk._images import ImageReferences, Images
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._mapping import map_results
from cloudpipe_sdk._quotas import Quotas
from cloudpipe_sdk._schedules import SavedJobs, Schedules
from cloudpipe_sdk._secrets import Secrets
from cloudpipe_sdk._transport import Transport
from cloudpipe_sdk._types import JobSpec
from cloudpipe_sdk._volumes import Volumes

if TYPE_CHECKING:
    from typing import Unpack  # 3.11+: annotations only, so the SDK imports on 3.10

P = ParamSpec("P")
R = TypeVar("R")


class Client(BaseClient[Transport]):
    """A connection to a Cloudpipe server.

    Settings come from the arguments, then the environment (`CLOUDPIPE_ADDRESS`,
    `CLOUDPIPE_API_KEY`, `CLOUDPIPE_ACCOUNT`, `CLOUDPIPE_TLS_CA`, `CLOUDPIPE_SERIALIZER`),
    then a profile of `~/.config/cloudpipe/config.toml` (`profile`, or
    `CLOUDPIPE_PROFILE`), then defaults (localhost:50051). With `tls_ca` (a PEM file,
    e.g. ca.pem from `cloudpipe pki init`) the channel is TLS. Every RPC has a deadline
    of `rpc_timeout` seconds; an unreachable server (UNAVAILABLE) is retried with
    backoff for `retry_for` seconds. `serializer` ("cloudpickle" or "dill") is the
    default for function jobs. `channel` replaces the one the client would open (tests,
    interceptors); the client does not close a channel it was given. `transport` is the
    connection the client's jobs use.

    Example::

        from cloudpipe_sdk import Client

        with Client("localhost:50051", api_key="...") as client:
            print(client.shell("echo hello").result())            # b"hello\\n"
            print(client.submit(pow, 2, 10).result(timeout=60))   # 1024
            print(list(client.map(abs, [-1, -2, 3])))              # [1, 2, 3]
    """

    def _open(self, config: ClientConfig, channel: grpc.Channel | None) -> Transport:
        return Transport(config, channel)

    def _references(self, transport: Transport) -> ImageReferences:
        return ImageReferences(transport)

    @property
    def images(self) -> Images:
        """Your account's images: build, get, list, delete (see `cloudpipe_sdk._images`)."""
        return Images(self.transport)

    @property
    def volumes(self) -> Volumes:
        """Your account's volumes and their files: create, get, list, delete; ls, put,
        get_file, read, rm (see `cloudpipe_sdk._volumes`)."""
        return Volumes(self.transport)

    @property
    def secrets(self) -> Secrets:
        """Your account's secrets: set, list, delete; values go in and never come back
        (see `cloudpipe_sdk._secrets`)."""
        return Secrets(self.transport)

    @property
    def quotas(self) -> Quotas:
        """Per-account quotas: get your own; the admin gets anyone's, sets, clears and
        lists them (see `cloudpipe_sdk._quotas`)."""
        return Quotas(self.transport)

    def close(self) -> None:
        """Close the connection (unless the channel was given, or this is a view made by
        `with_options`)."""
        if self._owner:
            self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def saved_jobs(self) -> SavedJobs:
        """Saved jobs of your account (see `cloudpipe_sdk._schedules`)."""
        return SavedJobs(self.transport, self.options)

    @property
    def schedules(self) -> Schedules:
        """Schedules of your account (see `cloudpipe_sdk._schedules`)."""
        return Schedules(self.transport, self.options)

    # -- submitting --------------------------------------------------------------------

    def shell(
        self,
        cmd: str,
        *,
        stdin: bytes | str | None = None,
        result_source: str = "stdout",
        interactive: bool = False,
        tty: bool = False,
        depends_on: Sequence[Job | int] = (),
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        """Run `cmd` with `/bin/bash -c` in a container and return its Job.

        `result_source` is "stdout" or "file:/path/in/container". `interactive` keeps
        stdin open for `job.attach()`; `tty` gives the job a terminal (a pty: it is
        interactive too, stdout and stderr come as one stream, stdout; set its size
        with the attachment's `resize`). The job starts once every job of `depends_on`
        ended done. `options` are `JobOptions` (image, cpus, memory, timeout in seconds,
        env, name, tags, network, restartable, fresh_container, volumes, secrets,
        inputs, outputs, storage_secret;
        `retries` is refused: the server does not re-run a failed command). Submitting is
        idempotent: a retried call never makes a second job (pass your own
        `idempotency_key` to extend that across processes).

        Example::

            client.shell("cat", stdin=b"hi").result()                  # b"hi"
            client.shell("nproc", cpus=2, timeout=60).result()         # b"2\\n"
            client.shell("wc -l < /data/in.txt", volumes={"/data": "mydata:ro"})
            client.shell("deploy.sh", secrets=["API_TOKEN"])          # $API_TOKEN in the job
        """
        spec = self._shell_spec(
            cmd,
            stdin=stdin,
            result_source=result_source,
            interactive=interactive,
            tty=tty,
            depends_on=depends_on,
            options=options,
        )
        return self._submit([spec], idempotency_key)[0]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        """Call `fn(*args, **kwargs)` in the Python 3 runner image; return its Job.

        `fn` and its arguments travel pickled with the client's serializer.
        `job.result()` returns what `fn` returned or re-raises what it raised. For job
        options (image, cpus, serializer...) use `client.with_options(...).submit(...)`.

        Example::

            job = client.submit(lambda x: x * 2, 21)
            job.result(timeout=60)   # 42
        """
        return self._submit([self._function_spec(fn, args, kwargs)])[0]

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        chunksize: int | None = None,
        timeout: float | None = None,
        return_exceptions: bool = False,
        progress: bool | None = None,
        **options: Any,
    ) -> Iterator[R]:
        """Like the builtin `map`, each call a job: `fn(a, b, ...)` for the items of the
        iterables taken together. Every job is submitted before this returns (a few
        hundred per Submit RPC); iterating yields the results in order.

        `chunksize=k` runs k calls per job (fewer container starts for short calls).
        `timeout` (seconds, from this call) raises Timeout when a result is not ready in
        time. A failed call raises its exception when its turn comes, and the jobs not
        finished then are killed, as `Executor.map` cancels pending futures (best effort:
        no retries, and none after the server is found unavailable); with
        `return_exceptions=True` exceptions are yielded in place instead. `progress`
        draws a bar on stderr: by default only when stderr is a terminal. `options` are
        `JobOptions` (image, cpus, memory, timeout is the map's, retries, serializer...).

        Example::

            list(client.map(pow, [2, 3], [5, 2]))          # [32, 9]
            list(client.map(str.upper, "abc", chunksize=2)) # ["A", "B", "C"]
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
    ) -> Iterator[R]:
        """`map` for argument tuples, like `itertools.starmap`.

        Example::

            list(client.starmap(pow, [(2, 5), (3, 2)]))   # [32, 9]
        """
        return self._map(fn, starred(iterable), chunksize, timeout, return_exceptions, progress, options)

    def _map(self, fn: Callable[..., Any], calls_: Sequence[tuple[Any, ...]], *settings: Any) -> Iterator[Any]:
        """Submit every job now; an iterator of the results in call order."""
        plan = self._map_plan(fn, calls_, *settings)
        return map_results(self.transport, plan.results(self._submit(plan.specs)))

    def executor(self, **options: Any) -> CloudpipeExecutor:
        """A `concurrent.futures.Executor` whose workers are Cloudpipe jobs (with these
        `JobOptions`). Code written for a process pool switches by one line.

        Example::

            with client.executor(cpus=1) as pool:      # was: ProcessPoolExecutor()
                futures = [pool.submit(pow, 2, n) for n in range(8)]
                print([f.result() for f in futures])
        """
        return CloudpipeExecutor(self.with_options(**options))

    @overload
    def function(self, fn: Callable[P, R], /) -> RemoteFunction[P, R]: ...

    @overload
    def function(self, /, **options: Any) -> Callable[[Callable[P, R]], RemoteFunction[P, R]]: ...

    def function(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> RemoteFunction[P, R] | Callable[[Callable[P, R]], RemoteFunction[P, R]]:
        """Decorate a function to run it as jobs: `f.remote(...)` submits one call and
        returns its Job, `f.map(...)` / `f.starmap(...)` run many, `f(...)` still calls it
        here. `options` are `JobOptions` (image, cpus, memory, timeout, retries, ...).

        Example::

            @client.function(cpus=2, memory="1G", timeout=300, retries=2)
            def square(x: int) -> int:
                return x * x

            square(3)                      # 9, computed locally
            square.remote(4).result()      # 16, computed in a container
            list(square.map(range(4)))     # [0, 1, 4, 9]
        """

        def decorate(target: Callable[P, R]) -> RemoteFunction[P, R]:
            return RemoteFunction(self.with_options(**options), target)

        return decorate(fn) if fn is not None else decorate

    # -- reading -----------------------------------------------------------------------

    def job(self, job_id: int) -> Job:
        """A handle on the job with this id, without fetching it (see `get`)."""
        return Job(self.transport, job_id)

    def get(self, job_id: int) -> Job:
        """The job with this id (NotFound if it is not in your account)."""
        return Job(self.transport, job_id, self.transport.call(calls.get_job(job_id)))

    def list(self, **filters: Unpack[calls.ListFilters]) -> builtins.list[Job]:
        """Your jobs matching every filter (`ids`, `names`, `statuses`, `created_after`,
        `created_before`), at most `limit` (100), newest first unless `newest_first=False`.

        Example::

            client.list(statuses=["error", "stalled"], limit=10)
        """
        return [
            Job(self.transport, snapshot.id, snapshot) for snapshot in self.transport.call(calls.list_jobs(**filters))
        ]

    def kill(self, job_id: int) -> Job:
        """Kill a job; a finished job is left as it is."""
        return Job(self.transport, job_id, self.transport.call(calls.kill_job(job_id)))

    def kill_all(self) -> builtins.list[int]:
        """Kill every unfinished job of your account; returns their ids."""
        return self.transport.call(calls.kill_all())

    def delete(self, *job_ids: int) -> builtins.list[int]:
        """Delete finished jobs with their output, all or none; returns their ids.
        Raises NotFound for a job that is not yours, InvalidRequest for one that has not
        finished (kill it first, or wait).

        Example::

            client.delete(job.id)   # after job.result()
        """
        return self.transport.call(calls.delete_jobs(job_ids))

    def queue_stats(self) -> dict[str, int]:
        """Number of your jobs per status."""
        return self.transport.call(calls.queue_stats())

    def _submit(self, specs: Sequence[JobSpec], idempotency_key: str | None = None) -> builtins.list[Job]:
        return [Job(self.transport, job_id) for job_id in self.transport.run(calls.submit(specs, idempotency_key))]
