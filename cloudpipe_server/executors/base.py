"""What runs a claimed job. The dispatcher holds the lease; an executor only runs."""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cloudpipe_server.errors import Unavailable
from cloudpipe_server.models import Job, Outcome, OutputChunk


class ExecutorUnavailable(Unavailable):
    """The executor's engine did not answer before the job's container was created or
    started: the job did not run, and may be given back to the queue as it was."""


class NeverStarted(ExecutorUnavailable):
    """The job's container exists but was never started (the server stopped between its
    create and its start): nothing of the job ran. The container has been removed."""


class EngineLost(Unavailable):
    """The executor's engine stopped answering after the job's container started (or
    while it was being re-adopted): the container may still run, or have ended, on the
    engine. The job is re-adopted (`Executor.adopt`) once the engine answers again; the
    output streamed so far has been handed to the observer."""


@dataclass(frozen=True)
class Limits:
    """Effective limits of one run (the job's own, or the server defaults)."""

    cpus: float
    memory_bytes: int
    pids: int
    max_runtime: float | None
    network: bool


@dataclass(frozen=True)
class ManagedContainer:
    """A container this system made for a job, found by its labels."""

    container_id: str
    job_id: int
    owner: str


Delivery = Literal["written", "not-started", "closed"]


class Signal(enum.Enum):
    TERM = "SIGTERM"
    INT = "SIGINT"


class RunObserver(abc.ABC):
    """Told about a run as it happens. Called from the executor's worker threads, so
    implementations must be thread-safe; `started` may block until it is recorded."""

    @abc.abstractmethod
    def started(self, container_id: str, at: datetime) -> None:
        """The container started."""

    @abc.abstractmethod
    def output(self, chunk: OutputChunk) -> None:
        """The job wrote these bytes."""


class Executor(abc.ABC):
    """Runs jobs to completion and reports how they ended."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start background work (a warm pool's idle eviction and pre-warming), if any.
        Called once, on the event loop, when the server starts serving."""

    async def reachable(self) -> bool:
        """Whether the engine answers now (a bounded, cheap check; it never raises).
        Executors without an engine to lose always answer True."""
        return True

    @abc.abstractmethod
    async def run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        """Run the job and return its outcome. Never raises for a problem of the job
        itself (missing image, bad command, crash): that is an ERROR outcome with a
        readable reason. Raises `ExecutorUnavailable` when the engine could not be
        reached before the job started (nothing of it ran), and `EngineLost` when it
        stopped answering after the start (the container is left where it is).
        Cancellation leaves the container running, to be re-adopted."""

    @abc.abstractmethod
    async def adopt(self, job: Job, limits: Limits) -> Outcome | None:
        """Take over a job whose container was started by an earlier run of this server:
        wait for it (bounded by what remains of max_runtime) and return its outcome, or
        None when no container of the job exists. Raises `NeverStarted` when its
        container was created but never started (it is removed: the job may be given
        back to the queue as it was), and `EngineLost` when the engine does not answer
        (then nothing is known: try again once it does)."""

    @abc.abstractmethod
    async def kill(self, job_id: int) -> bool:
        """Stop the job's container if this executor runs it (SIGTERM, then SIGKILL after
        the grace period). Returns whether the job was found."""

    @abc.abstractmethod
    async def signal(self, job_id: int, signal: Signal) -> bool:
        """Send a signal to the job's processes. Returns whether the job was found."""

    @abc.abstractmethod
    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        """Send bytes to a running interactive job: "written", "not-started" (its
        container is not attached yet, or the job is not this executor's yet or any more:
        try again shortly, while the job is PROCESSING here) or "closed" (stdin was
        closed)."""

    @abc.abstractmethod
    async def close_stdin(self, job_id: int) -> Delivery:
        """Close a running job's stdin; answers like `write_stdin`."""

    async def resize(self, job_id: int, rows: int, columns: int) -> Delivery:
        """Set a running tty job's terminal size: "written" (done, or nothing is left to
        resize: its container exited) or "not-started" (as for `write_stdin`). Executors
        without terminals answer "written" and do nothing."""
        return "written"

    async def image_labels(self, image: str) -> Mapping[str, str] | None:
        """The labels of `image` as the engine has it, or None when it is not there
        (yet) or this executor cannot tell. Only used for submit-time checks."""
        return None

    @abc.abstractmethod
    async def list_managed(self) -> list[ManagedContainer]:
        """Every job container of this cluster (servers sharing the store) on the engine,
        running or not, of any owner."""

    @abc.abstractmethod
    async def remove(self, container_id: str) -> None:
        """Force-remove a container; a missing one is not an error."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release clients. Running containers are left to be re-adopted or reaped."""
