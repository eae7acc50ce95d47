"""The dispatcher: claim queued jobs with a lease, run them on the executor, record
how they ended.

A heartbeat extends the leases of running jobs, forwards kill requests made through
any replica, reaps jobs whose runner was lost, and removes containers whose job no
longer runs. On start, jobs still leased to this server's identity (it was restarted)
are re-adopted before the first reaper pass (their leases may have expired while the
server was down): their containers are waited for, or the jobs are left to the reaper
when their container is gone.

Jobs are claimed only while the executor's engine answers (`EngineWatch`): during an
outage queued jobs stay queued, and a claimed job that could not start because the
engine did not answer goes back to the queue without using up an attempt. A job whose
engine stopped answering while it ran stays tracked here (its lease kept, its streamed
output stored) and is re-adopted as a restarted server's leftovers are, once the engine
answers again.

Over 400 lines on purpose: the claim loop, the heartbeat, re-adoption and recording an
outcome all read and change the same runs tracked here (tasks, attempts, output
writers), which splitting them would turn into an interface; the engine's state, output
batching and the seam the jobs service uses are already in engine.py, output.py and
runner.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from cloudpipe_common.logs import job_context, job_fields
from cloudpipe_common.waiting import wait_set
from cloudpipe_server.errors import FailedPrecondition, NotFound, StoreUnavailable
from cloudpipe_server.executors.base import (
    Delivery,
    EngineLost,
    Executor,
    ExecutorUnavailable,
    Limits,
    NeverStarted,
    RunObserver,
    Signal,
)
from cloudpipe_server.jobs.engine import EngineWatch
from cloudpipe_server.jobs.events import JobEvents
from cloudpipe_server.jobs.output import OutputHub, OutputWriter
from cloudpipe_server.models import Job, JobStatus, Outcome, OutputChunk
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
    max_running_per_account: int = 0  # 0: no per-account limit


class Dispatcher:
    """Runs queued jobs, at most `max_concurrent_jobs` at once."""

    def __init__(
        self,
        store: JobStore,
        executor: Executor,
        events: JobEvents,
        hub: OutputHub,
        config: DispatcherConfig,
        clock: Callable[[], datetime],
        *,
        on_engine: Callable[[bool], Awaitable[None]] | None = None,
        prepare: Callable[[Job], Awaitable[Job]] | None = None,
    ) -> None:
        """`on_engine(up)` is told each time the executor's engine stops or starts
        answering (the server's health service). `prepare(job)` is the job as the
        executor gets it (its secrets attached); a FailedPrecondition from it fails the
        job with its message as the reason."""
        self._store = store
        self._executor = executor
        self._events = events
        self._hub = hub
        self._config = config
        self._clock = clock
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._writers: dict[int, OutputWriter] = {}
        self._attempts: dict[int, int] = {}  # job id -> the attempt running here (its lease)
        # job id -> its account, for the lines of sweeps over many jobs (the heartbeat)
        self._accounts: dict[int, str] = {}
        self._recording: set[int] = set()  # jobs whose outcome is being stored: `finish` decides
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._engine = EngineWatch(executor.reachable, on_engine)
        self._adopted = asyncio.Event()  # leftovers are tracked: the heartbeat may reap
        self._prepare = prepare

    @property
    def engine_up(self) -> bool:
        """The executor's engine answered the last check."""
        return self._engine.up

    @property
    def running_job_ids(self) -> set[int]:
        return set(self._running)

    def runs_here(self, job_id: int) -> bool:
        return job_id in self._running

    def unflushed_output(self, job_id: int) -> list[OutputChunk]:
        """Output of a job running here that may not be in the store yet."""
        writer = self._writers.get(job_id)
        return writer.unflushed() if writer is not None else []

    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        return await self._executor.write_stdin(job_id, data)

    async def close_stdin(self, job_id: int) -> Delivery:
        return await self._executor.close_stdin(job_id)

    async def resize(self, job_id: int, rows: int, columns: int) -> Delivery:
        return await self._executor.resize(job_id, rows, columns)

    async def signal(self, job_id: int, signal: Signal) -> bool:
        return await self._executor.signal(job_id, signal)

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
        running: a server restarted with the same identity re-adopts them, and any
        other replica requeues or stalls them once their leases expire."""
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
            if pending:
                log.info("left %d job(s) running, to be re-adopted", len(pending))

    # -- loops --------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        try:
            await self._adopt_leftovers()
        finally:
            self._adopted.set()
        while not self._stopping:
            await self._engine.wait_up()  # claim nothing while the engine is away
            self._wake.clear()
            free = self._config.max_concurrent_jobs - len(self._running)
            claimed: list[Job] = []
            if free > 0:
                try:
                    claimed = await self._store.claim(
                        self._config.owner,
                        self._clock(),
                        timedelta(seconds=self._config.lease_seconds),
                        free,
                        per_account_limit=self._config.max_running_per_account,
                    )
                except StoreUnavailable as exc:
                    log.warning("claiming failed, retrying: %s", exc)
                except Exception:  # the claim loop must outlive any one bad pass
                    log.exception("claiming failed, retrying")
            for job in claimed:
                self._track(job, self._execute(job))
            if claimed and len(claimed) == free:
                continue
            await wait_set(self._wake, self._config.poll_interval)

    async def _adopt_leftovers(self) -> None:
        try:
            leftovers = await self._store.owned(self._config.owner)
        except StoreUnavailable as exc:
            log.warning("could not look for jobs to re-adopt (the reaper will recover them): %s", exc)
            return
        for job in leftovers:
            self._track(job, self._adopt(job))

    def _track(self, job: Job, work: Coroutine[Any, Any, None]) -> None:
        earlier = self._running.get(job.id)
        if earlier is not None:
            # This server lost the lease of an earlier attempt that still runs here and
            # claimed the job again: stop the earlier run (its outcome is refused by
            # the store: wrong attempt) before the new one starts.
            log.warning(
                "job %d: claimed again (attempt %d) while an earlier attempt runs here",
                job.id,
                job.attempts,
                extra=job_fields(job.id, job.account),
            )
            work = self._after(earlier, job.id, work)
        # the task's own context names its job: every line of its run carries job_id and account
        context = job_context(job.id, job.account)
        self._accounts[job.id] = job.account
        self._running[job.id] = asyncio.create_task(work, name=f"cloudpipe-job-{job.id}", context=context)

    async def _after(self, earlier: asyncio.Task[None], job_id: int, work: Coroutine[Any, Any, None]) -> None:
        await self._executor.kill(job_id)
        await asyncio.gather(earlier, return_exceptions=True)
        await work

    def _untrack(self, job_id: int) -> None:
        """Forget the job's run, unless a newer attempt of it has taken its place."""
        if self._running.get(job_id) is asyncio.current_task():
            del self._running[job_id]
            self._attempts.pop(job_id, None)
            self._accounts.pop(job_id, None)

    async def _heartbeat_loop(self) -> None:
        interval = self._config.lease_seconds / 3
        # Adopted jobs' leases (expired if the server was down long) are extended by the
        # first sweep before it reaps: reaping earlier would stall this server's own jobs.
        await self._adopted.wait()
        while not self._stopping:
            try:
                await self._heartbeat()
            except StoreUnavailable as exc:
                log.warning("heartbeat failed, retrying: %s", exc)
            except Exception:  # the heartbeat must survive anything one sweep hits
                log.exception("heartbeat failed")
            await asyncio.sleep(interval)

    async def _heartbeat(self) -> None:
        now = self._clock()
        ids = list(self._running)
        held = await self._store.extend_leases(
            self._config.owner,
            ids,
            now + timedelta(seconds=self._config.lease_seconds),
            attempts={job_id: self._attempts[job_id] for job_id in ids if job_id in self._attempts},
        )
        # A job that ended meanwhile (or whose outcome is being stored) gave its lease up
        # itself: it was not lost, and nothing of it is left to stop.
        lost = {i for i in set(ids) - held if i in self._running and i not in self._recording}
        for job_id in lost:
            log.warning(
                "job %d: lease lost; stopping its container",
                job_id,
                extra=job_fields(job_id, self._accounts.get(job_id)),
            )
        to_kill = lost | await self._store.kill_requested(list(held))
        # concurrently: each stop may wait out the grace period, and the next lease
        # extension must not wait for all of them
        kills = (
            asyncio.create_task(self._executor.kill(i), context=job_context(i, self._accounts.get(i))) for i in to_kill
        )
        await asyncio.gather(*kills)
        for job in await self._store.reap_expired(now, self._config.max_attempts):
            log.warning(
                "job %d: runner lost, now %s (%s)",
                job.id,
                job.status.value,
                job.reason,
                extra=job_fields(job.id, job.account),
            )
            self._events.publish(job.id)
            if job.status is JobStatus.QUEUED:
                self.wake()
        if await self._engine.check():
            await self._remove_orphans()

    async def _remove_orphans(self) -> None:
        """Remove containers whose job is no longer running under the container's owner
        (its server died, or it finished): no container outlives its job."""
        for container in await self._executor.list_managed():
            if container.owner == self._config.owner and container.job_id in self._running:
                continue
            try:
                job: Job | None = await self._store.get(container.job_id, with_output=False)
            except NotFound:
                job = None
            if job is not None and job.status is JobStatus.PROCESSING and job.lease_owner == container.owner:
                continue
            fields = job_fields(container.job_id, job.account if job is not None else None)
            log.info(
                "job %d: removing orphaned container %s", container.job_id, container.container_id[:12], extra=fields
            )
            try:
                await self._executor.remove(container.container_id)
            except Exception:  # one bad container must not stop the sweep
                log.exception(
                    "job %d: could not remove container %s", container.job_id, container.container_id[:12], extra=fields
                )

    # -- one job ------------------------------------------------------------------------

    def _limits(self, job: Job) -> Limits:
        spec = job.spec
        return Limits(
            cpus=spec.resources.cpus or self._config.default_cpus,
            memory_bytes=spec.resources.memory_bytes or self._config.default_memory_bytes,
            pids=spec.resources.pids or self._config.default_pids,
            max_runtime=(spec.max_runtime.total_seconds() if spec.max_runtime else None)
            or self._config.default_max_runtime
            or None,
            network=spec.network,
        )

    async def _execute(self, job: Job) -> None:
        image = job.spec.image or self._config.default_image
        log.info("job %d: processing (attempt %d, image %s)", job.id, job.attempts, image)
        self._attempts[job.id] = job.attempts
        self._events.publish(job.id)
        writer = self._writers[job.id] = OutputWriter(self._store, job.id, self._config.owner, job.attempts)
        observer = _Observer(asyncio.get_running_loop(), self, job.id)
        lost: EngineLost | None = None
        store_down = False
        try:
            try:
                runnable = job if self._prepare is None else await self._prepare(job)
                outcome = await self._executor.run(runnable, image, self._limits(job), observer)
            except asyncio.CancelledError:
                raise
            except FailedPrecondition as exc:  # the job cannot start as asked (a secret is gone)
                log.info("job %d: cannot start: %s", job.id, exc)
                outcome = Outcome(JobStatus.ERROR, self._clock(), reason=str(exc))
            except ExecutorUnavailable as exc:  # nothing ran: give the job back
                outcome = None
                unavailable = str(exc)
            except StoreUnavailable as exc:  # its secrets could not be read: nothing ran
                outcome, unavailable, store_down = None, f"the store did not answer: {exc}", True
            except EngineLost as exc:  # the container may run on: re-adopted below
                outcome, lost = None, exc
            except Exception:  # a bug, not the job's fault: record it, never leave it processing
                log.exception("job %d: executor failed", job.id)
                outcome = Outcome(JobStatus.ERROR, self._clock(), reason="internal error while running the job")
            finally:
                await writer.close()
                if self._writers.get(job.id) is writer:
                    del self._writers[job.id]
            if lost is not None:
                await self._engine.lost(str(lost))
                await self._adopt_when_up(await self._refreshed(job))
            elif outcome is None:
                if not store_down:
                    await self._engine.lost(unavailable)
                await self._give_back(job.id, unavailable)
            else:
                await self._record(job.id, outcome)
        finally:
            self._untrack(job.id)
            self._wake.set()

    async def _adopt(self, job: Job) -> None:
        self._attempts[job.id] = job.attempts
        try:
            await self._adopt_when_up(job)
        finally:
            self._untrack(job.id)
            self._wake.set()

    async def _adopt_when_up(self, job: Job) -> None:
        """Take the job's container over once the engine answers and record how it ended.
        The job is tracked meanwhile, so the heartbeat keeps its lease while the engine
        is away. With no container left, the job is left to the reaper once its lease
        expires: requeued if restartable, else STALLED, as any job whose runner was lost."""
        job = await self._prepared_for_outputs(job)
        while True:
            await self._engine.wait_up()
            try:
                outcome = await self._executor.adopt(job, self._limits(job))
            except EngineLost as exc:  # away again: nothing is known yet
                await self._engine.lost(str(exc))
                continue
            except NeverStarted as exc:  # nothing of it ran: back to the queue, as it was
                await self._give_back(job.id, str(exc))
                return
            except Exception:
                log.exception("job %d: re-adopting failed; leaving it to the reaper", job.id)
                outcome = None
            break
        if outcome is None:
            log.warning("job %d: no container to re-adopt; the reaper recovers it when its lease expires", job.id)
            return
        await self._record(job.id, outcome)

    async def _prepared_for_outputs(self, job: Job) -> Job:
        """A re-adopted job that uploads outputs needs its storage secret again; when it
        cannot be had, the job is adopted without it (its upload then fails, saying so)."""
        if self._prepare is None or not job.spec.outputs:
            return job
        try:
            return await self._prepare(job)
        except Exception as exc:
            log.warning("job %d: its secrets could not be read for its outputs: %s", job.id, exc)
            return job

    async def _refreshed(self, job: Job) -> Job:
        """The job as stored now (its container's start time bounds what is left of its
        max_runtime), or as it was claimed when the store does not answer."""
        try:
            return await self._store.get(job.id, with_output=False)
        except Exception as exc:  # the claimed copy still names the job and its attempt
            log.warning("job %d: could not re-read it before re-adopting: %s", job.id, exc)
            return job

    async def _container_started(self, job_id: int, container_id: str, at: datetime) -> None:
        await self._store.mark_started(job_id, self._config.owner, container_id, at, attempt=self._attempts.get(job_id))
        self._events.publish(job_id)

    def _output(self, job_id: int, chunk: OutputChunk) -> None:
        self._hub.publish(job_id, chunk)
        writer = self._writers.get(job_id)
        if writer is not None:
            writer.add(chunk)

    def _store_retrying(self, job_id: int, what: str) -> AsyncRetrying:
        """Retries through store outages for as long as the server runs: the job stays
        in `_running`, so its lease keeps being extended meanwhile."""
        return AsyncRetrying(
            retry=retry_if_exception_type(StoreUnavailable),
            stop=lambda _: self._stopping,
            wait=wait_exponential(multiplier=0.2, max=5),
            before_sleep=lambda state: log.warning(
                "job %d: %s failed (try %d), retrying", job_id, what, state.attempt_number
            ),
            reraise=True,
        )

    async def _give_back(self, job_id: int, why: str) -> None:
        """The job did not start (its engine did not answer): back to the queue, its
        attempt not counted; claiming resumes once the engine answers."""
        reason = f"requeued: it could not start ({why})"
        try:
            async for attempt in self._store_retrying(job_id, "requeueing"):
                with attempt:
                    given_back = await self._store.unclaim(
                        job_id, self._config.owner, self._clock(), reason, attempt=self._attempts.get(job_id)
                    )
        except StoreUnavailable as exc:
            log.error("job %d: not requeued before shutdown (%s); the lease decides", job_id, exc)
            return
        if given_back:
            log.warning("job %d: %s", job_id, reason)
        else:
            log.warning("job %d: could not start, and its lease was lost meanwhile", job_id)
        self._events.publish(job_id)

    async def _record(self, job_id: int, outcome: Outcome) -> None:
        """Store the outcome (see `_store_retrying`)."""
        self._recording.add(job_id)
        try:
            async for attempt in self._store_retrying(job_id, "recording the outcome"):
                with attempt:
                    recorded = await self._store.finish(
                        job_id, self._config.owner, outcome, attempt=self._attempts.get(job_id)
                    )
        except StoreUnavailable as exc:
            log.error("job %d: outcome not recorded before shutdown (%s); the lease decides", job_id, exc)
            return
        finally:
            self._recording.discard(job_id)
        if recorded:
            log.info("job %d: %s%s", job_id, outcome.status.value, f" ({outcome.reason})" if outcome.reason else "")
        else:
            log.warning("job %d: finished after its lease was lost; outcome dropped", job_id)
        self._events.publish(job_id)


class _Observer(RunObserver):
    """Hops from the executor's threads onto the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dispatcher: Dispatcher, job_id: int) -> None:
        self._loop = loop
        self._dispatcher = dispatcher
        self._job_id = job_id

    def started(self, container_id: str, at: datetime) -> None:
        coroutine = self._dispatcher._container_started(self._job_id, container_id, at)
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    def output(self, chunk: OutputChunk) -> None:
        self._loop.call_soon_threadsafe(self._dispatcher._output, self._job_id, chunk)
