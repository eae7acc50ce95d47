"""`Client`: the synchronous entry point of the SDK."""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import grpc
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk._errors import InvalidRequest, from_rpc_error
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._schedules import SavedJobs, Schedules
from cloudpipe_sdk._serialize import (
    RESULT_PATH,
    RUNNER_COMMAND,
    SERIALIZER,
    SERIALIZER_VERSION,
    client_python,
    dump_call,
)
from cloudpipe_sdk._status import JobStatus

DEFAULT_ADDRESS = "localhost:50051"
MAX_MESSAGE_BYTES = 256 << 20
_STATUS_TO_PB = {
    JobStatus.WAITING: pb.JOB_STATUS_WAITING,
    JobStatus.QUEUED: pb.JOB_STATUS_QUEUED,
    JobStatus.PROCESSING: pb.JOB_STATUS_PROCESSING,
    JobStatus.DONE: pb.JOB_STATUS_DONE,
    JobStatus.ERROR: pb.JOB_STATUS_ERROR,
    JobStatus.KILLED: pb.JOB_STATUS_KILLED,
    JobStatus.STALLED: pb.JOB_STATUS_STALLED,
}


def _unavailable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE


class Client:
    """A connection to a Cloudpipe server.

    Arguments fall back to the environment: `CLOUDPIPE_ADDRESS` (default
    localhost:50051), `CLOUDPIPE_API_KEY`, `CLOUDPIPE_ACCOUNT` and `CLOUDPIPE_TLS_CA`.
    With `tls_ca` (a PEM file, e.g. ca.pem from `cloudpipe pki init`) the channel is
    TLS and the server's certificate must be signed by that CA.

    Example::

        from cloudpipe_sdk import Client

        with Client("localhost:50051", api_key="...") as client:
            print(client.shell("echo hello").result())        # b"hello\\n"
            print(client.submit(pow, 2, 10).result(timeout=60))  # 1024
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        account: str | None = None,
        timeout: float = 30.0,
        retry_for: float = 10.0,
        tls_ca: str | os.PathLike[str] | None = None,
    ) -> None:
        self.address = address or os.environ.get("CLOUDPIPE_ADDRESS") or DEFAULT_ADDRESS
        key = api_key if api_key is not None else os.environ.get("CLOUDPIPE_API_KEY", "")
        account = account if account is not None else os.environ.get("CLOUDPIPE_ACCOUNT") or None
        tls_ca = tls_ca if tls_ca is not None else os.environ.get("CLOUDPIPE_TLS_CA") or None
        self._metadata: tuple[tuple[str, str], ...] = ()
        if key:
            self._metadata += (("authorization", f"Bearer {key}"),)
        if account:
            self._metadata += (("x-cloudpipe-account", account),)
        self._timeout = timeout
        self._retry_for = retry_for
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls_ca:
            with open(tls_ca, "rb") as handle:
                credentials = grpc.ssl_channel_credentials(root_certificates=handle.read())
            self._channel = grpc.secure_channel(self.address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.address, options=options)
        self._stub = pb_grpc.JobServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._channel.close()

    @property
    def saved_jobs(self) -> SavedJobs:
        """Saved jobs of your account (see `cloudpipe_sdk._schedules`)."""
        return SavedJobs(self)

    @property
    def schedules(self) -> Schedules:
        """Schedules of your account (see `cloudpipe_sdk._schedules`)."""
        return Schedules(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- submitting --------------------------------------------------------------------

    def shell(
        self,
        cmd: str,
        *,
        image: str | None = None,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        result_source: str = "stdout",
        timeout: float | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        network: bool = False,
        cpus: float | None = None,
        memory: int | None = None,
        restartable: bool = False,
        interactive: bool = False,
        idempotency_key: str | None = None,
    ) -> Job:
        """Run `cmd` with `/bin/bash -c` in a container and return its Job.

        `result_source` is "stdout" or "file:/path/in/container"; `timeout` bounds the
        container's run time in seconds; `memory` is in bytes. `interactive` keeps stdin
        open for `job.attach()`. A retried call with the same `idempotency_key` returns
        the job the first call created.

        Example::

            client.shell("cat", stdin=b"hi").result()   # b"hi"
        """
        spec = pb.JobSpec(
            cmd=cmd,
            name=name or "",
            image=image or "",
            stdin=stdin.encode() if isinstance(stdin, str) else (stdin or b""),
            env=dict(env or {}),
            tags=dict(tags or {}),
            result_source=result_source,
            result_type=pb.RESULT_TYPE_BINARY,
            network=network,
            restartable=restartable,
            resources=pb.Resources(cpus=cpus or 0.0, memory_bytes=memory or 0),
            interactive=interactive,
            idempotency_key=idempotency_key or "",
        )
        if timeout is not None:
            spec.max_runtime.FromTimedelta(timedelta(seconds=timeout))
        return self._submit_one(spec)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        """Call `fn(*args, **kwargs)` in the Python 3 runner image; return its Job.

        `fn` and its arguments travel with cloudpickle. `job.result()` returns what
        `fn` returned or re-raises what it raised.

        Example::

            job = client.submit(lambda x: x * 2, 21)
            job.result(timeout=60)   # 42
        """
        spec = pb.JobSpec(
            cmd=RUNNER_COMMAND,
            stdin=dump_call(fn, args, kwargs),
            result_source=f"file:{RESULT_PATH}",
            result_type=pb.RESULT_TYPE_PICKLE,
            serializer=SERIALIZER,
            client_python=client_python(),
            env={"CLOUDPIPE_CLIENT_CLOUDPICKLE": SERIALIZER_VERSION},
            tags={"function": _qualname(fn)},
        )
        return self._submit_one(spec)

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
        limit: int = 100,
        newest_first: bool = True,
    ) -> builtins.list[Job]:
        """Your jobs matching every filter, newest first by default."""
        request = pb.ListJobsRequest(
            ids=builtins.list(ids),
            names=builtins.list(names),
            statuses=[_STATUS_TO_PB[JobStatus(s)] for s in statuses],
            limit=limit,
            newest_first=newest_first,
        )
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

    # -- plumbing used by Job ----------------------------------------------------------

    def _submit_one(self, spec: pb.JobSpec) -> Job:
        try:
            response = self._stub.Submit(pb.SubmitRequest(jobs=[spec]), timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        if len(response.ids) != 1:
            raise InvalidRequest(f"the server returned {len(response.ids)} ids for one job")
        return Job(self, response.ids[0])

    def _get(self, job_id: int) -> pb.Job:
        return self._call(self._stub.Get, pb.GetJobRequest(id=job_id))  # type: ignore[no-any-return]

    def _kill(self, job_id: int) -> pb.Job:
        return self._call(self._stub.Kill, pb.KillJobRequest(id=job_id))  # type: ignore[no-any-return]

    def _wait_stream(self, job_id: int, timeout: float | None) -> Iterator[pb.JobStatusEvent]:
        return self._stub.Wait(pb.WaitJobRequest(id=job_id), timeout=timeout, metadata=self._metadata)  # type: ignore[no-any-return]

    def _call(self, method: Any, request: Any) -> Any:
        """An idempotent unary call, retried while the server is UNAVAILABLE."""
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_unavailable),
                stop=stop_after_delay(self._retry_for),
                wait=wait_exponential(multiplier=0.1, max=2),
                reraise=True,
            ):
                with attempt:
                    return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        raise AssertionError("unreachable")


def _qualname(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', type(fn).__name__)}"[:200]
