"""`Job`: a handle on one submitted job, usable like a concurrent.futures.Future."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc

from cloudpipe_sdk._convert import status_from_pb
from cloudpipe_sdk._errors import Timeout, from_rpc_error
from cloudpipe_sdk._job_calls import get_job, kill_job
from cloudpipe_sdk._outcome import job_exception, outcome
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._stream import Attachment
from cloudpipe_sdk._types import Event, JobSnapshot, Output

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import Transport


class Job:
    """A submitted job on a transport (`client.transport`). Properties that describe
    the job fetch its latest state.

    Example::

        job = client.shell("echo hello")
        job.result()          # b"hello\\n"
        job.status            # JobStatus.DONE
    """

    def __init__(self, transport: Transport, job_id: int, snapshot: JobSnapshot | None = None) -> None:
        self.transport = transport
        self.id = job_id
        self._snapshot = snapshot

    def __repr__(self) -> str:
        status = self._snapshot.status.value if self._snapshot is not None else "?"
        return f"<Job {self.id} {status}>"

    # -- state ------------------------------------------------------------------------

    def refresh(self) -> JobSnapshot:
        """Fetch the job's current state from the server and return it."""
        self._snapshot = self.transport.call(get_job(self.id))
        return self._snapshot

    @property
    def snapshot(self) -> JobSnapshot:
        """The state last fetched (fetching it if never fetched): spec, status, output,
        times (see `JobSnapshot`)."""
        return self._snapshot if self._snapshot is not None else self.refresh()

    def _final_snapshot(self) -> JobSnapshot:
        if self._snapshot is None or not self._snapshot.status.finished:
            return self.refresh()
        return self._snapshot

    @property
    def status(self) -> JobStatus:
        return self._final_snapshot().status

    @property
    def stdout(self) -> str:
        """Standard output so far, decoded as UTF-8 (undecodable bytes replaced)."""
        return self._final_snapshot().stdout.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self._final_snapshot().stderr.decode("utf-8", "replace")

    @property
    def return_code(self) -> int | None:
        return self._final_snapshot().return_code

    @property
    def reason(self) -> str:
        return self._final_snapshot().reason

    def done(self) -> bool:
        """Whether the job has finished (in any final status)."""
        return self.status.finished

    # -- waiting and results -----------------------------------------------------------

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the job finishes; return its final status.
        Raises Timeout if it is still running after `timeout` seconds. A job already
        known to be finished returns at once, whatever the timeout."""
        if self._snapshot is not None and self._snapshot.status.finished:
            return self._snapshot.status
        deadline = None if timeout is None else time.monotonic() + timeout
        outage = self.transport.outage(f"job {self.id}")
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            outage.opened()
            try:
                for event in self.transport.wait_events(self.id, remaining):
                    outage.progress()
                    status = status_from_pb(event.status)
                    if status.finished:
                        self.refresh()
                        return status
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise Timeout(f"job {self.id} did not finish within {timeout} s") from None
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(exc) from None
                # the server restarts: watch again (backing off) until the deadline, or
                # Unavailable after retry_for seconds without it
                time.sleep(outage.delay())

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job and return its result.

        Shell jobs return bytes (stdout, or the `file:` result). Function jobs return the
        function's return value, or re-raise its exception with the remote traceback as
        `__cause__`. Raises JobFailed / JobKilled / JobStalled when there is no result,
        and Timeout when the job is still running after `timeout` seconds.
        """
        self.wait(timeout)
        return outcome(self._final_snapshot())

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The job's own failure `result()` would raise (JobFailed and subclasses, or the
        function's exception), or None if the job succeeded. Errors of waiting itself
        (Timeout, Unavailable, AuthError...) are raised, not returned."""
        self.wait(timeout)
        return job_exception(self._final_snapshot())

    def kill(self) -> None:
        """Kill the job. A finished job stays as it is."""
        self._snapshot = self.transport.call(kill_job(self.id))

    # -- live output and input ------------------------------------------------------------

    def stream(self, *, stdout_offset: int = 0, stderr_offset: int = 0) -> Iterator[Event]:
        """Events as they happen: `Output` chunks (from the given offsets on), `StatusChange`
        and, last, `Exit`. A finished job replays its output. Reconnects by itself.

        Example::

            for event in job.stream():
                if isinstance(event, Output):
                    print(event.text, end="")
        """
        with Attachment(self.transport, self.id, stdout_offset, stderr_offset) as attachment:
            yield from attachment

    def logs(self, *, follow: bool = False) -> Iterator[str]:
        """The job's output as text: what exists now (stdout, then stderr), or with
        `follow=True` everything as it is written, stdout and stderr interleaved,
        until the job ends."""
        if not follow:
            snapshot = self.refresh()
            for data in (snapshot.stdout, snapshot.stderr):
                if data:
                    yield data.decode("utf-8", "replace")
            return
        for event in self.stream():
            if isinstance(event, Output):
                yield event.text

    def attach(self, *, stdin: bytes | str | None = None) -> Attachment:
        """Connect to the job to watch it and type into it (submit it with
        `interactive=True` to keep its stdin open). With `stdin`, send it and close stdin.

        Example::

            job = client.shell("cat", interactive=True)
            with job.attach() as session:
                session.write("hello\n")
                session.close_stdin()
                print(b"".join(e.data for e in session if isinstance(e, Output)))
        """
        attachment = Attachment(self.transport, self.id)
        if stdin is not None:
            attachment.write(stdin)
            attachment.close_stdin()
        return attachment
