"""A `JobStore` that measures another: every call's latency (and failures) by
operation, and the job events the store sees: submitted, claimed (time queued),
container started (overhead), finished (by status, with the container's run time).

Wrapping the store keeps the metrics out of the dispatcher and the service: every job
passes through these calls whichever component makes them. Jobs finished without a
`finish` call (killed while queued, reaped) are counted from what `request_kill`,
`kill_all` and `reap_expired` return.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from cloudpipe_server.metrics import ServerMetrics
from cloudpipe_server.models import Attempt, Job, JobQuery, JobSpec, JobStatus, Outcome, OutputChunk, Stream
from cloudpipe_server.store.base import FinishedCount, JobStore, Purged

T = TypeVar("T")
_MAX_TRACKED = 100_000  # claimed jobs remembered for the overhead/duration histograms


class MeteredStore(JobStore):
    """`inner`, measured into `metrics`; `on_account` learns each account that submits."""

    def __init__(
        self, inner: JobStore, metrics: ServerMetrics, on_account: Callable[[str], None] | None = None
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._on_account = on_account
        self._claimed_at: dict[int, datetime] = {}
        self._container_at: dict[int, datetime] = {}

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        except Exception:
            self._metrics.store_errors.labels(operation).inc()
            raise
        finally:
            self._metrics.store_latency.labels(operation).observe(time.perf_counter() - started)

    def _finished(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if job.status.terminal:
                self._metrics.jobs_finished.labels(job.status.value).inc()

    async def initialize(self) -> None:
        await self._inner.initialize()

    async def close(self) -> None:
        await self._inner.close()

    async def submit(self, account: str, specs: Sequence[JobSpec], now: datetime) -> list[int]:
        ids = await self._timed("submit", self._inner.submit(account, specs, now))
        self._metrics.jobs_submitted.inc(len(ids))
        if self._on_account is not None:
            self._on_account(account)
        return ids

    async def get(self, job_id: int, account: str | None = None, *, with_output: bool = True) -> Job:
        return await self._timed("get", self._inner.get(job_id, account, with_output=with_output))

    async def attempts(self, job_id: int, account: str | None = None) -> list[Attempt]:
        return await self._timed("attempts", self._inner.attempts(job_id, account))

    async def list_jobs(self, account: str, query: JobQuery) -> list[Job]:
        return await self._timed("list_jobs", self._inner.list_jobs(account, query))

    async def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int, per_account_limit: int = 0
    ) -> list[Job]:
        jobs = await self._timed("claim", self._inner.claim(owner, now, lease, limit, per_account_limit))
        for job in jobs:
            self._metrics.claim_latency.observe(max(0.0, (now - job.created_at).total_seconds()))
            if len(self._claimed_at) < _MAX_TRACKED:
                self._claimed_at[job.id] = now
        return jobs

    async def owned(self, owner: str) -> list[Job]:
        return await self._timed("owned", self._inner.owned(owner))

    async def append_output(
        self, job_id: int, owner: str, chunks: Sequence[OutputChunk], *, attempt: int | None = None
    ) -> bool:
        return await self._timed("append_output", self._inner.append_output(job_id, owner, chunks, attempt=attempt))

    async def read_output(self, job_id: int, stream: Stream, offset: int, account: str | None = None) -> bytes:
        return await self._timed("read_output", self._inner.read_output(job_id, stream, offset, account))

    async def extend_leases(
        self, owner: str, job_ids: Sequence[int], until: datetime, *, attempts: Mapping[int, int] | None = None
    ) -> set[int]:
        return await self._timed("extend_leases", self._inner.extend_leases(owner, job_ids, until, attempts=attempts))

    async def mark_started(
        self, job_id: int, owner: str, container_id: str, container_started_at: datetime, *, attempt: int | None = None
    ) -> None:
        call = self._inner.mark_started(job_id, owner, container_id, container_started_at, attempt=attempt)
        await self._timed("mark_started", call)
        claimed = self._claimed_at.get(job_id)
        if claimed is not None:
            self._metrics.job_overhead.observe(max(0.0, (container_started_at - claimed).total_seconds()))
        if len(self._container_at) < _MAX_TRACKED:
            self._container_at[job_id] = container_started_at

    async def finish(self, job_id: int, owner: str, outcome: Outcome, *, attempt: int | None = None) -> bool:
        recorded = await self._timed("finish", self._inner.finish(job_id, owner, outcome, attempt=attempt))
        self._claimed_at.pop(job_id, None)
        container_at = self._container_at.pop(job_id, None)
        if recorded:
            self._metrics.jobs_finished.labels(outcome.status.value).inc()
            if container_at is not None:
                self._metrics.job_duration.observe(max(0.0, (outcome.finished_at - container_at).total_seconds()))
        return recorded

    async def request_kill(self, job_id: int, account: str, now: datetime) -> Job:
        before = await self._inner.get(job_id, account, with_output=False)
        job = await self._timed("request_kill", self._inner.request_kill(job_id, account, now))
        if not before.status.terminal and job.status is JobStatus.KILLED:
            self._finished([job])  # killed while waiting or queued: no finish call follows
        return job

    async def kill_all(self, account: str, now: datetime) -> list[int]:
        queued = await self._inner.list_jobs(
            account, JobQuery(statuses=(JobStatus.WAITING, JobStatus.QUEUED), limit=1 << 30, with_output=False)
        )
        ids = await self._timed("kill_all", self._inner.kill_all(account, now))
        killed = set(ids)
        for job in queued:
            if job.id in killed:
                self._metrics.jobs_finished.labels(JobStatus.KILLED.value).inc()
        return ids

    async def kill_requested(self, job_ids: Sequence[int]) -> set[int]:
        return await self._timed("kill_requested", self._inner.kill_requested(job_ids))

    async def unfinished_accounts(self, after: str, limit: int) -> list[str]:
        return await self._timed("unfinished_accounts", self._inner.unfinished_accounts(after, limit))

    async def trim_output(self, account_bytes: int, limit: int) -> int:
        return await self._timed("trim_output", self._inner.trim_output(account_bytes, limit))

    async def counts(self, account: str) -> dict[JobStatus, int]:
        return await self._timed("counts", self._inner.counts(account))

    async def counts_by_account(self) -> dict[str, dict[JobStatus, int]]:
        return await self._timed("counts_by_account", self._inner.counts_by_account())

    async def finished_since(self, since: datetime, account: str | None = None) -> list[FinishedCount]:
        return await self._timed("finished_since", self._inner.finished_since(since, account))

    async def unclaim(self, job_id: int, owner: str, now: datetime, reason: str, *, attempt: int | None = None) -> bool:
        given_back = await self._timed("unclaim", self._inner.unclaim(job_id, owner, now, reason, attempt=attempt))
        self._claimed_at.pop(job_id, None)
        self._container_at.pop(job_id, None)
        return given_back

    async def reap_expired(self, now: datetime, max_attempts: int) -> list[Job]:
        jobs = await self._timed("reap_expired", self._inner.reap_expired(now, max_attempts))
        self._finished(jobs)
        return jobs

    async def delete_finished(self, account: str, job_ids: Sequence[int]) -> list[int]:
        return await self._timed("delete_finished", self._inner.delete_finished(account, job_ids))

    async def purge(self, output_before: datetime | None, jobs_before: datetime | None, limit: int) -> Purged:
        return await self._timed("purge", self._inner.purge(output_before, jobs_before, limit))

    async def hold_identity(
        self, server_id: str, holder: str, now: datetime, until: datetime, *, replacing: str = ""
    ) -> str:
        return await self._timed(
            "hold_identity", self._inner.hold_identity(server_id, holder, now, until, replacing=replacing)
        )

    async def release_identity(self, server_id: str, holder: str) -> None:
        await self._timed("release_identity", self._inner.release_identity(server_id, holder))
