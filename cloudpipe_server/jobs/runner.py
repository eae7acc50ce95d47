"""What the jobs service and a watch need from whatever runs jobs in this process.

`Dispatcher` is the one implementation; the seam lets `JobService` and `Watch` be built
(and tested) against anything that answers these calls, without the claim loop, leases
or an executor behind them.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Protocol

from cloudpipe_server.executors.base import Delivery, Signal
from cloudpipe_server.models import OutputChunk


class JobRunner(Protocol):
    """Runs claimed jobs here; every call is about jobs of this process only."""

    @property
    def running_job_ids(self) -> Set[int]:
        """The jobs running in this process now."""

    def runs_here(self, job_id: int) -> bool:
        """Whether the job runs in this process (else on another replica, or not at all)."""

    def wake(self) -> None:
        """New work may be queued: look for it now rather than at the next poll."""

    async def kill(self, job_id: int) -> None:
        """Stop the job if it runs here (TERM, grace, KILL); otherwise nothing."""

    async def signal(self, job_id: int, signal: Signal) -> bool:
        """Signal the job's processes; whether it runs here and got the signal."""

    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        """Deliver stdin bytes to the running job (see `Executor.write_stdin`)."""

    async def close_stdin(self, job_id: int) -> Delivery:
        """Close the running job's stdin (see `Executor.close_stdin`)."""

    async def resize(self, job_id: int, rows: int, columns: int) -> Delivery:
        """Set the running tty job's terminal size (see `Executor.resize`)."""

    def unflushed_output(self, job_id: int) -> list[OutputChunk]:
        """Output of a job running here that may not be in the store yet."""
