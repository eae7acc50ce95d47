"""The dispatcher: claim queued jobs with a lease, run them on the executor, record
how they ended. A heartbeat extends the leases of running jobs, forwards kill requests
made through any replica, and reaps jobs whose runner was lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from cloudpipe_server.errors import NotFound, StoreUnavailable
from cloudpipe_server.events import JobEvents
from cloudpipe_server.executors.base import Executor, Limits
from cloudpipe_server.models import Job, JobStatus, Outcome
from cloudpipe_server.store.base import JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatcherConfig:
    owner: str
    max_concurrent_jobs: int
    poll_interval: float
    lease_seconds: float
    max_attempts: int
    default_image: str
    default_cpus: float
    default_memory_bytes: int
    default_pids: int
    default_max_runtime: float


class Dispatcher:
    """Runs queued jobs, at most `max_concurrent_jobs` at once."""

    def __init__(
        self,
        store: JobStore,
        executor: Executor,
        events: JobEvents,
        config: DispatcherConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._executor = executor
        self._events = events
        self._config = config
        self._clock = clock
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def running_job_ids(self) -> set[int]:
        return set(self._running)

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="cloudpipe-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="cloudpipe-heartbeat"),
        ]

    def wake(self) -> None:
        """New work may be queued: claim now rather than at the next poll."""
        self._wake.set()

    async def kill(self, job_id: int) -> None:
        """Stop the job's container if it runs here."""
        await self._executor.kill(job_id)

    async def stop(self, grace: float) -> None:
        """Stop claiming; give running jobs `grace` seconds to finish, then leave them
        (their leases expire and they are requeued or stalled)."""
        self._stopping = True
        self._wake.set()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._running:
            log.info("waiting up to %.0f s for %d running job(s)", grace, len(self._running))
            _, pending = await asyncio.wait(list(self._running.values()), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- loops --------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self._config.max_concurrent_jobs - len(self._running)
            claimed: list[Job] = []
            if free > 0:
                try:
                    claimed = await self._store.claim(
                        self._config.owner, self._clock(), timedelta(seconds=self._config.lease_seconds), free
                    )
                except StoreUnavailable as exc:
                    log.warning("claiming failed, retrying: %s", exc)
            for job in claimed:
                self._running[job.id] = asyncio.create_task(self._execute(job), name=f"cloudpipe-job-{job.id}")
            if claimed and len(claimed) == free:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self._config.poll_interval)
            except TimeoutError:
                pass

    async def _heartbeat_loop(self) -> None:
        interval = self._config.lease_seconds / 3
        while not self._stopping:
            try:
                await self._heartbeat()
            except StoreUnavailable as exc:
                log.warning("heartbeat failed, retrying: %s", exc)
            await asyncio.sleep(interval)

    async def _heartbeat(self) -> None:
        now = self._clock()
        ids = list(self._running)
        held = await self._store.extend_leases(
            self._config.owner, ids, now + timedelta(seconds=self._config.lease_seconds)
        )
        for job_id in set(ids) - held:
            log.warning("job %d: lease lost; stopping its container", job_id)
            await self._executor.kill(job_id)
        for job_id in await self._store.kill_requested(list(held)):
            await self._executor.kill(job_id)
        for job in await self._store.reap_expired(now, self._config.max_attempts):
            log.warning("job %d: runner lost, now %s (%s)", job.id, job.status.value, job.reason)
            self._events.publish(job.id)
            if job.status is JobStatus.QUEUED:
                self.wake()
        await self._remove_orphans()

    async def _remove_orphans(self) -> None:
        """Remove containers whose job is no longer running under the container's owner
        (its server died, or it finished): no container outlives its job."""
        for container in await self._executor.list_managed():
            if container.owner == self._config.owner and container.job_id in self._running:
                continue
            try:
                job = await self._store.get(container.job_id)
            except NotFound:
                job = None
            if job is not None and job.status is JobStatus.PROCESSING and job.lease_owner == container.owner:
                continue
            log.info("job %d: removing orphaned container %s", container.job_id, container.container_id[:12])
            try:
                await self._executor.remove(container.container_id)
            except Exception:  # one bad container must not stop the sweep
                log.exception("job %d: could not remove container %s", container.job_id, container.container_id[:12])

    # -- one job ------------------------------------------------------------------------

    async def _execute(self, job: Job) -> None:
        spec = job.spec
        image = spec.image or self._config.default_image
        limits = Limits(
            cpus=spec.resources.cpus or self._config.default_cpus,
            memory_bytes=spec.resources.memory_bytes or self._config.default_memory_bytes,
            pids=spec.resources.pids or self._config.default_pids,
            max_runtime=(spec.max_runtime.total_seconds() if spec.max_runtime else None)
            or self._config.default_max_runtime
            or None,
            network=spec.network,
        )
        log.info("job %d: processing (attempt %d, image %s)", job.id, job.attempts, image)
        self._events.publish(job.id)

        async def on_started(container_id: str, at: datetime) -> None:
            await self._store.mark_started(job.id, self._config.owner, container_id, at)
            self._events.publish(job.id)

        try:
            outcome = await self._executor.run(job, image, limits, on_started)
        except asyncio.CancelledError:
            self._running.pop(job.id, None)
            raise
        except Exception:  # a bug, not the job's fault: record it, never leave it processing
            log.exception("job %d: executor failed", job.id)
            outcome = Outcome(JobStatus.ERROR, self._clock(), reason="internal error while running the job")
        try:
            await self._record(job.id, outcome)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    async def _record(self, job_id: int, outcome: Outcome) -> None:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(StoreUnavailable),
                stop=stop_after_attempt(5),
                wait=wait_exponential(multiplier=0.2, max=5),
                reraise=True,
            ):
                with attempt:
                    recorded = await self._store.finish(job_id, self._config.owner, outcome)
        except StoreUnavailable as exc:
            log.error("job %d: outcome not recorded (%s); its lease will expire and the reaper decides", job_id, exc)
            return
        if recorded:
            log.info("job %d: %s%s", job_id, outcome.status.value, f" ({outcome.reason})" if outcome.reason else "")
        else:
            log.warning("job %d: finished after its lease was lost; outcome dropped", job_id)
        self._events.publish(job_id)
