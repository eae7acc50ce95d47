"""`Client`: the synchronous entry point of the SDK."""

from __future__ import annotations

import builtins
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import grpc

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk._config import ClientConfig, resolve_config
from cloudpipe_sdk._errors import InvalidRequest, from_rpc_error
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._mapping import submit_map
from cloudpipe_sdk._options import JobOptions
from cloudpipe_sdk._retry import retrying
from cloudpipe_sdk._schedules import SavedJobs, Schedules
from cloudpipe_sdk._serialize import check_serializer
from cloudpipe_sdk._status import JobStatus

if TYPE_CHECKING:
    from cloudpipe_sdk._executor import CloudpipeExecutor
    from cloudpipe_sdk._function import RemoteFunction

P = ParamSpec("P")
R = TypeVar("R")

MAX_MESSAGE_BYTES = 256 << 20
SUBMIT_BATCH = 250  # jobs per Submit RPC
SUBMIT_BATCH_BYTES = 32 << 20  # and at most about this many bytes of stdin
_STATUS_TO_PB = {
    JobStatus.WAITING: pb.JOB_STATUS_WAITING,
    JobStatus.QUEUED: pb.JOB_STATUS_QUEUED,
    JobStatus.PROCESSING: pb.JOB_STATUS_PROCESSING,
    JobStatus.DONE: pb.JOB_STATUS_DONE,
    JobStatus.ERROR: pb.JOB_STATUS_ERROR,
    JobStatus.KILLED: pb.JOB_STATUS_KILLED,
    JobStatus.STALLED: pb.JOB_STATUS_STALLED,
}


def open_channel(config: ClientConfig) -> grpc.Channel:
    """A channel to `config.address`: TLS verified with `config.tls_ca` when given."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if config.tls_ca:
        with open(config.tls_ca, "rb") as handle:
            credentials = grpc.ssl_channel_credentials(root_certificates=handle.read())
        return grpc.secure_channel(config.address, credentials, options=options)
    return grpc.insecure_channel(config.address, options=options)


def metadata_for(config: ClientConfig) -> tuple[tuple[str, str], ...]:
    metadata: tuple[tuple[str, str], ...] = ()
    if config.api_key:
        metadata += (("authorization", f"Bearer {config.api_key}"),)
    if config.account:
        metadata += (("x-cloudpipe-account", config.account),)
    return metadata


class Client:
    """A connection to a Cloudpipe server.

    Settings come from the arguments, then the environment (`CLOUDPIPE_ADDRESS`,
    `CLOUDPIPE_API_KEY`, `CLOUDPIPE_ACCOUNT`, `CLOUDPIPE_TLS_CA`, `CLOUDPIPE_SERIALIZER`),
    then a profile of `~/.config/cloudpipe/config.toml` (`profile`, or
    `CLOUDPIPE_PROFILE`), then defaults (localhost:50051). With `tls_ca` (a PEM file,
    e.g. ca.pem from `cloudpipe pki init`) the channel is TLS. Every RPC has a deadline
    of `rpc_timeout` seconds; an unreachable server (UNAVAILABLE) is retried with
    backoff for `retry_for` seconds. `serializer` ("cloudpickle" or "dill") is the
    default for function jobs. `channel` replaces the one the client would open (tests,
    interceptors); the client does not close a channel it was given.

    Example::

        from cloudpipe_sdk import Client

        with Client("localhost:50051", api_key="...") as client:
            print(client.shell("echo hello").result())            # b"hello\\n"
            print(client.submit(pow, 2, 10).result(timeout=60))   # 1024
            print(list(client.map(abs, [-1, -2, 3])))              # [1, 2, 3]
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        account: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        serializer: str | None = None,
        rpc_timeout: float | None = None,
        retry_for: float | None = None,
        channel: grpc.Channel | None = None,
    ) -> None:
        self.config = resolve_config(
            profile=profile,
            address=address,
            api_key=api_key,
            account=account,
            tls_ca=tls_ca,
            serializer=serializer,
            rpc_timeout=rpc_timeout,
            retry_for=retry_for,
        )
        self.address = self.config.address
        self._serializer = check_serializer(self.config.serializer)
        self._metadata = metadata_for(self.config)
        self._timeout = self.config.rpc_timeout
        self._retry_for = self.config.retry_for
        self._owns_channel = channel is None
        self._channel = channel if channel is not None else open_channel(self.config)
        self._stub = pb_grpc.JobServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._options = JobOptions()

    def close(self) -> None:
        """Close the connection (unless the channel was given, or this is a view made by
        `with_options`)."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.address}>"

    def with_options(self, **options: Any) -> Client:
        """A view of this client (same connection) whose jobs use these `JobOptions`:
        image, cpus, memory, timeout, retries, serializer, env, name, tags, network,
        restartable, fresh_container.

        Example::

            big = client.with_options(cpus=4, memory="8G", serializer="dill")
            big.submit(train, data).result()
        """
        view = object.__new__(Client)
        view.__dict__.update(self.__dict__)
        view._owns_channel = False
        view._options = self._options.merged(**options)
        if view._options.serializer:
            view._serializer = view._options.serializer
        return view

    @property
    def saved_jobs(self) -> SavedJobs:
        """Saved jobs of your account (see `cloudpipe_sdk._schedules`)."""
        return SavedJobs(self)

    @property
    def schedules(self) -> Schedules:
        """Schedules of your account (see `cloudpipe_sdk._schedules`)."""
        return Schedules(self)

    # -- submitting --------------------------------------------------------------------

    def shell(
        self,
        cmd: str,
        *,
        stdin: bytes | str | None = None,
        result_source: str = "stdout",
        interactive: bool = False,
        depends_on: Sequence[Job | int] = (),
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        """Run `cmd` with `/bin/bash -c` in a container and return its Job.

        `result_source` is "stdout" or "file:/path/in/container". `interactive` keeps
        stdin open for `job.attach()`. The job starts once every job of `depends_on`
        ended done. `options` are `JobOptions` (image, cpus, memory, timeout in seconds,
        env, name, tags, network, restartable, fresh_container). Submitting is idempotent: a retried call
        never makes a second job (pass your own `idempotency_key` to extend that across
        processes).

        Example::

            client.shell("cat", stdin=b"hi").result()                  # b"hi"
            client.shell("nproc", cpus=2, timeout=60).result()         # b"2\\n"
        """
        spec = self._options.merged(**options).shell_spec(cmd, stdin=stdin, result_source=result_source)
        spec.interactive = interactive
        spec.depends_on.extend(dep.id if isinstance(dep, Job) else dep for dep in depends_on)
        return self._submit_specs([spec], idempotency_key)[0]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        """Call `fn(*args, **kwargs)` in the Python 3 runner image; return its Job.

        `fn` and its arguments travel pickled with the client's serializer.
        `job.result()` returns what `fn` returned or re-raises what it raised. For job
        options (image, cpus, serializer...) use `client.with_options(...).submit(...)`.

        Example::

            job = client.submit(lambda x: x * 2, 21)
            job.result(timeout=60)   # 42
        """
        spec = self._options.function_spec(fn, args, kwargs, serializer=self._serializer)
        return self._submit_specs([spec])[0]

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
        calls = builtins.list(zip(*iterables, strict=False))
        return submit_map(
            self,
            fn,
            calls,
            options=self._options.merged(**options),
            chunksize=chunksize,
            timeout=timeout,
            return_exceptions=return_exceptions,
            progress=progress,
        )

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
        calls = [tuple(args) for args in iterable]
        return submit_map(
            self,
            fn,
            calls,
            options=self._options.merged(**options),
            chunksize=chunksize,
            timeout=timeout,
            return_exceptions=return_exceptions,
            progress=progress,
        )

    def executor(self, **options: Any) -> CloudpipeExecutor:
        """A `concurrent.futures.Executor` whose workers are Cloudpipe jobs (with these
        `JobOptions`). Code written for a process pool switches by one line.

        Example::

            with client.executor(cpus=1) as pool:      # was: ProcessPoolExecutor()
                futures = [pool.submit(pow, 2, n) for n in range(8)]
                print([f.result() for f in futures])
        """
        from cloudpipe_sdk._executor import CloudpipeExecutor

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
        from cloudpipe_sdk._function import RemoteFunction

        def decorate(target: Callable[P, R]) -> RemoteFunction[P, R]:
            return RemoteFunction(self.with_options(**options), target)

        return decorate(fn) if fn is not None else decorate

    # -- reading -----------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job with this id (NotFound if it is not in your account)."""
        return Job(self, job_id, self._get(job_id))

    def list(
        self,
        *,
        ids: Sequence[int] = (),
        names: Sequence[str] = (),
        statuses: Sequence[JobStatus | str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> builtins.list[Job]:
        """Your jobs matching every filter, newest first by default.

        Example::

            client.list(statuses=["error", "stalled"], limit=10)
        """
        request = pb.ListJobsRequest(
            ids=builtins.list(ids),
            names=builtins.list(names),
            statuses=[_STATUS_TO_PB[JobStatus(s)] for s in statuses],
            limit=limit,
            newest_first=newest_first,
        )
        if created_after is not None:
            request.created_after.FromDatetime(created_after)
        if created_before is not None:
            request.created_before.FromDatetime(created_before)
        response = self._call(self._stub.List, request)
        return [Job(self, job.id, job) for job in response.jobs]

    def kill(self, job_id: int) -> Job:
        """Kill a job; a finished job is left as it is."""
        return Job(self, job_id, self._kill(job_id))

    def kill_all(self) -> builtins.list[int]:
        """Kill every unfinished job of your account; returns their ids."""
        return builtins.list(self._call(self._stub.KillAll, pb.KillAllRequest()).ids)

    def queue_stats(self) -> dict[str, int]:
        """Number of your jobs per status."""
        return dict(self._call(self._stub.QueueStats, pb.QueueStatsRequest()).counts)

    # -- plumbing used by Job and friends ------------------------------------------------

    def _submit_specs(self, specs: Sequence[pb.JobSpec], idempotency_key: str | None = None) -> builtins.list[Job]:
        """Submit in batches of SUBMIT_BATCH jobs per RPC. Each spec gets an idempotency
        key made from one per call, so a Submit retried after UNAVAILABLE (the server may
        have stored the jobs before the answer was lost) returns the same jobs."""
        base = idempotency_key or uuid.uuid4().hex
        for index, spec in enumerate(specs):
            if not spec.idempotency_key:
                spec.idempotency_key = base if len(specs) == 1 else f"{base}-{index}"
        ids: builtins.list[int] = []
        for batch in _batches(specs):
            response = self._call(self._stub.Submit, pb.SubmitRequest(jobs=batch))
            if len(response.ids) != len(batch):
                raise InvalidRequest(f"the server returned {len(response.ids)} ids for {len(batch)} jobs")
            ids.extend(response.ids)
        return [Job(self, job_id) for job_id in ids]

    def _submit_one(self, spec: pb.JobSpec) -> Job:
        return self._submit_specs([spec])[0]

    def _get(self, job_id: int) -> pb.Job:
        return self._call(self._stub.Get, pb.GetJobRequest(id=job_id))  # type: ignore[no-any-return]

    def _kill(self, job_id: int) -> pb.Job:
        return self._call(self._stub.Kill, pb.KillJobRequest(id=job_id))  # type: ignore[no-any-return]

    def _wait_stream(self, job_id: int, timeout: float | None) -> Iterator[pb.JobStatusEvent]:
        return self._stub.Wait(pb.WaitJobRequest(id=job_id), timeout=timeout, metadata=self._metadata)  # type: ignore[no-any-return]

    def _call(self, method: Any, request: Any, *, retry: bool = True) -> Any:
        """A unary call with a deadline, retried with backoff while the server is
        UNAVAILABLE (every call is idempotent: Submit through its idempotency keys);
        `retry=False` makes one attempt (best-effort cleanup)."""
        try:
            for attempt in retrying(self._retry_for, retry=retry):
                with attempt:
                    return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        raise AssertionError("unreachable")


def _batches(specs: Sequence[pb.JobSpec]) -> Iterator[builtins.list[pb.JobSpec]]:
    batch: builtins.list[pb.JobSpec] = []
    size = 0
    for spec in specs:
        spec_size = spec.ByteSize()
        if batch and (len(batch) >= SUBMIT_BATCH or size + spec_size > SUBMIT_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(spec)
        size += spec_size
    if batch:
        yield batch
