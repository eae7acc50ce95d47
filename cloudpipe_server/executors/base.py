"""What runs a claimed job. The dispatcher holds the lease; an executor only runs."""

from __future__ import annotations

import abc
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudpipe_server.models import Job, Outcome

OnStarted = Callable[[str, datetime], Coroutine[Any, Any, None]]
"""Called once the job's container started: (container id, start time)."""


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


class Executor(abc.ABC):
    """Runs jobs to completion and reports how they ended."""

    @abc.abstractmethod
    async def run(self, job: Job, image: str, limits: Limits, on_started: OnStarted) -> Outcome:
        """Run the job and return its outcome. Never raises for a problem of the job
        itself (missing image, bad command, crash): that is an ERROR outcome with a
        readable reason. Cancellation leaves the container to the reaper."""

    @abc.abstractmethod
    async def kill(self, job_id: int) -> bool:
        """Stop the job's container if this executor runs it (SIGTERM, then SIGKILL after
        the grace period). Returns whether a container was found."""

    @abc.abstractmethod
    async def list_managed(self) -> list[ManagedContainer]:
        """Every job container on the engine, running or not, of any owner."""

    @abc.abstractmethod
    async def remove(self, container_id: str) -> None:
        """Force-remove a container; a missing one is not an error."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release clients. Running containers are left to be re-adopted or reaped."""
