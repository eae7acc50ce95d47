"""A test double of `Executor`: runs no container and needs no Docker engine.

It ships in the package (conventions 6) so the gRPC API, the dispatcher and watches can
be tested in-process and fast; it never replaces the tests against the real engine
(the `docker`-marked tests). Nothing in the server chooses it: tests pass it to
`start_server(settings, executor=FakeExecutor(...))` or to a `Dispatcher`.

A job's command is read as a tiny script, steps separated by `;` or `&&`:

    echo WORDS        WORDS and a newline on stdout (`echo WORDS >&2`: on stderr)
    cat               the job's stdin on stdout (an interactive job's until it is closed)
    sleep SECONDS     keep running that long (a kill or max_runtime ends it sooner)
    exit N, false     end with exit code N (1); a non-zero code ends the job ERROR
    true, anything    does nothing

A run "starts a container" (`fake-<job id>-<n>`, listed by `list_managed` while it
runs), reports its output through the observer as it is written, and ends DONE, ERROR
or KILLED as the Docker executor would. The result is stdout (a `file:` result source
reads nothing: there is no file system). `plant_container` adds a container as a
crashed server would leave it, for re-adoption and orphan-sweep tests.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cloudpipe_common.waiting import within
from cloudpipe_server.executors.base import Delivery, Executor, Limits, ManagedContainer, RunObserver, Signal
from cloudpipe_server.models import Job, JobStatus, Outcome, OutputChunk, Stream

_STEP_SEPARATOR = re.compile(r"\s*(?:;|&&)\s*")


@dataclass
class _Run:
    job: Job
    container_id: str
    killed: asyncio.Event = field(default_factory=asyncio.Event)
    stdin: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    stdin_closed: bool = False
    offsets: dict[Stream, int] = field(default_factory=lambda: {Stream.STDOUT: 0, Stream.STDERR: 0})
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)


class FakeExecutor(Executor):
    """Runs each job's command as the script described above, in memory.

    `owner` labels its containers (as the server identity does); `images` maps an image
    to its labels for `image_labels` (absent: unknown). `started`, `killed` and
    `signals` record what happened, for assertions."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        owner: str = "fake",
        images: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._clock = clock
        self._owner = owner
        self._images = dict(images or {})
        self._runs: dict[int, _Run] = {}
        self._containers: dict[str, ManagedContainer] = {}
        self._serial = itertools.count(1)
        self.started: list[int] = []
        self.killed: list[int] = []
        self.signals: list[tuple[int, Signal]] = []
        self.is_started = False

    def start(self) -> None:
        self.is_started = True

    def plant_container(self, job_id: int, owner: str) -> str:
        """A container of `job_id` left by server `owner` (e.g. one that crashed)."""
        container_id = f"fake-{job_id}-{next(self._serial)}"
        self._containers[container_id] = ManagedContainer(container_id, job_id, owner)
        return container_id

    # -- the Executor interface ---------------------------------------------------------

    async def run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        run = self._runs[job.id] = _Run(job, f"fake-{job.id}-{next(self._serial)}")
        self._containers[run.container_id] = ManagedContainer(run.container_id, job.id, self._owner)
        self.started.append(job.id)
        try:
            # `started` blocks until the dispatcher recorded it: call it off the loop, as
            # the Docker executor's threads do
            await asyncio.to_thread(observer.started, run.container_id, self._clock())
            code, reason = await self._script(run, limits, observer)
        finally:
            self._runs.pop(job.id, None)
            self._containers.pop(run.container_id, None)
        return self._outcome(run, code, reason)

    async def adopt(self, job: Job, limits: Limits) -> Outcome | None:
        """A planted container of this job and owner "finished meanwhile": DONE."""
        for container in list(self._containers.values()):
            if container.job_id == job.id and container.owner == self._owner:
                del self._containers[container.container_id]
                return Outcome(JobStatus.DONE, self._clock(), return_code=0)
        return None

    async def kill(self, job_id: int) -> bool:
        run = self._runs.get(job_id)
        if run is None:
            return False
        self.killed.append(job_id)
        run.killed.set()
        return True

    async def signal(self, job_id: int, signal: Signal) -> bool:
        if job_id not in self._runs:
            return False
        self.signals.append((job_id, signal))
        return True

    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        run = self._runs.get(job_id)
        if run is None:
            return "not-started"  # as the Docker executor answers
        if run.stdin_closed:
            return "closed"
        run.stdin.put_nowait(data)
        return "written"

    async def close_stdin(self, job_id: int) -> Delivery:
        run = self._runs.get(job_id)
        if run is None:
            return "not-started"  # as the Docker executor answers
        if run.stdin_closed:
            return "closed"
        run.stdin_closed = True
        run.stdin.put_nowait(None)
        return "written"

    async def image_labels(self, image: str) -> Mapping[str, str] | None:
        labels = self._images.get(image)
        return dict(labels) if labels is not None else None

    async def list_managed(self) -> list[ManagedContainer]:
        return list(self._containers.values())

    async def remove(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    async def close(self) -> None:
        for run in self._runs.values():
            run.killed.set()

    # -- the script -----------------------------------------------------------------------

    async def _script(self, run: _Run, limits: Limits, observer: RunObserver) -> tuple[int, str]:
        """Run the steps: (exit code, "" or why the run was stopped)."""
        started = asyncio.get_running_loop().time()
        for step in filter(None, _STEP_SEPARATOR.split(run.job.spec.cmd.strip())):
            if run.killed.is_set():
                return 137, ""
            words = shlex.split(step)
            if words[0] == "echo":
                to_stderr = words[-1:] == [">&2"]
                text = " ".join(words[1:-1] if to_stderr else words[1:]) + "\n"
                self._write(run, Stream.STDERR if to_stderr else Stream.STDOUT, text.encode(), observer)
            elif words[0] == "cat":
                await self._cat(run, observer)
            elif words[0] == "sleep":
                seconds = float(words[1])
                if limits.max_runtime is not None:
                    left = limits.max_runtime - (asyncio.get_running_loop().time() - started)
                    if left < seconds:
                        if not await self._sleep(run, max(left, 0.0)):
                            return 137, ""
                        return 137, f"max_runtime exceeded ({limits.max_runtime:g} s)"
                if not await self._sleep(run, seconds):
                    return 137, ""
            elif words[0] in ("exit", "false"):
                return (int(words[1]) if len(words) > 1 else 1) if words[0] == "exit" else 1, ""
        return 0, ""

    async def _sleep(self, run: _Run, seconds: float) -> bool:
        """Sleep unless killed first; whether the whole time passed."""
        try:
            await within(run.killed.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def _cat(self, run: _Run, observer: RunObserver) -> None:
        if run.job.spec.stdin:
            self._write(run, Stream.STDOUT, run.job.spec.stdin, observer)
        if not run.job.spec.interactive:
            return
        while True:
            getter = asyncio.ensure_future(run.stdin.get())
            killed = asyncio.ensure_future(run.killed.wait())
            done, pending = await asyncio.wait({getter, killed}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()  # a cancelled Queue.get loses no item
            data = getter.result() if getter in done else None
            if data is None:
                return
            self._write(run, Stream.STDOUT, data, observer)

    def _write(self, run: _Run, stream: Stream, data: bytes, observer: RunObserver) -> None:
        observer.output(OutputChunk(stream, run.offsets[stream], data))
        run.offsets[stream] += len(data)
        (run.stdout if stream is Stream.STDOUT else run.stderr).extend(data)

    def _outcome(self, run: _Run, code: int, reason: str) -> Outcome:
        status = JobStatus.DONE if code == 0 and not reason else JobStatus.ERROR
        if run.killed.is_set():
            status, reason = JobStatus.KILLED, "killed on request"
        elif status is JobStatus.ERROR and not reason:
            reason = f"exited with code {code}"
        stdout = bytes(run.stdout)
        result = stdout if status is JobStatus.DONE and run.job.spec.result_path is None else b""
        return Outcome(status, self._clock(), reason, code, stdout, bytes(run.stderr), result)
